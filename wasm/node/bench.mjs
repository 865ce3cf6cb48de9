// bench.mjs times one UNet call of our engine and of onnxruntime side by
// side, back to back, under the onnxruntime peer harness's rule (its README):
// same weights (the fp32 diffusers folder; ORT runs its ONNX export of it),
// same golden_io.safetensors inputs, 2 warm-ups then 7 timed calls, median
// and min, one call from CPU inputs to a CPU output, and the foreign CPU
// load of every call (the harness's procmon).
//
//   node wasm/node/bench.mjs [--paths LIST] [--repeat 1] [--out /tmp/harmony-peer-DATE] [--synthetic medium]
//        [--no-subgroups] (ours: keep the kernels off subgroups where the adapter has them)
//        --peers DIR (the peer harness's folder; or $HARMONY_PEERS) [--model testdata/blipdiffusion-tiny]
//        [--golden PEERS/models/tiny/golden_io.safetensors] [--runs 7] [--warmup 2]
//
// Paths (run in the order given, the whole list --repeat times):
//   ours-chromium      harmony-bench.wasm on www/bench.html in headless Chromium (SwiftShader),
//                      launched and served exactly as the harness's bench/run_chromium.mjs
//   ours-chromium-profile  the same with a per-kernel profile (every dispatch waited for
//                      on its own: serialized, so its times are not comparable)
//   ours-node          harmony-bench.wasm in Node + Dawn (SwiftShader ICD), as bench/ort_web_node.mjs
//   ours-native        `harmony peer` (wgpu-native on lavapipe: not the same adapter)
//   ort-chromium-native | ort-chromium-jsep | ort-chromium-wasm | ort-node-native | ort-node-jsep | ort-node-cpu
//                      the harness's own commands, run from --peers
// Writes OUT/<path>.<n>.json (+ .f32 outputs) and OUT/summary.md (the table with
// ORT/ours ratios: Chromium rows against ours-chromium, Node + Dawn rows against
// ours-node, onnxruntime-node CPU against ours-native).
//
// Internal: --child-node FILE runs the ours-node path in this (child) process and writes its record to FILE.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const argv = process.argv.slice(2);
const args = {};
for (let i = 0; i < argv.length; i++) {
  if (!argv[i].startsWith('--')) continue;
  const k = argv[i].slice(2), v = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : '1';
  args[k] = v;
}
if (!args.peers && !process.env.HARMONY_PEERS) {
  console.error('bench.mjs: --peers DIR (the onnxruntime peer harness folder) is required');
  process.exit(2);
}
const PEERS = path.resolve(args.peers || process.env.HARMONY_PEERS);
const MODEL = args.model ? path.resolve(args.model) : path.join(REPO, 'testdata/blipdiffusion-tiny');
const GOLDEN = path.resolve(args.golden || path.join(PEERS, 'models/tiny/golden_io.safetensors'));
const RUNS = +(args.runs || 7), WARMUP = +(args.warmup || 2);
// --synthetic medium: the harness's medium UNet with random weights (ours only: its ONNX file is not here).
const SYNTHETIC = args.synthetic || '';
const MODEL_NAME = SYNTHETIC || 'tiny';
const CHROMIUM = args.chromium || '/usr/lib/chromium/chromium';
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const log = (...a) => console.error('[bench]', ...a);

// The harness's procmon and stats, so both engines are measured by the same code.
const { snapshot, usage, waitQuiet } = await import(pathToFileURL(path.join(PEERS, 'bench/lib/procmon.mjs')).href);
const { cleanStats, compare, parseSafetensors } = await import(pathToFileURL(path.join(PEERS, 'bench/lib/common.mjs')).href);

// ---------------------------------------------------------------- serving
// A static server on 127.0.0.1 with the harness's headers (COOP/COEP/CORP,
// no-store), Range requests (the engine's fetch source reads weights in
// ranges), and the harness's POST endpoints (/log, /mark, /report).
function serve(routes, onPost) {
  const hdr = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store' };
  const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
    '.json': 'application/json' };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => { res.writeHead(204, hdr); res.end(); onPost(url, Buffer.concat(chunks).toString('utf8')); });
      return;
    }
    const rel = decodeURIComponent(url.pathname);
    let file = null;
    for (const [prefix, target] of routes) {
      if (prefix.endsWith('/') ? rel.startsWith(prefix) : rel === prefix) {
        file = prefix.endsWith('/') ? path.join(target, rel.slice(prefix.length)) : target;
        if (prefix.endsWith('/') && !file.startsWith(target + path.sep)) file = null;
        break;
      }
    }
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404, hdr); res.end('not found'); return; }
    const size = fs.statSync(file).size;
    const type = MIME[path.extname(file)] || 'application/octet-stream';
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    if (m && (m[1] !== '' || m[2] !== '')) {
      let start = m[1] === '' ? Math.max(0, size - +m[2]) : +m[1];
      let end = m[1] === '' || m[2] === '' ? size - 1 : Math.min(+m[2], size - 1);
      if (start >= size || start > end) {
        res.writeHead(416, { ...hdr, 'Content-Range': `bytes */${size}` }); res.end(); return;
      }
      res.writeHead(206, { ...hdr, 'Content-Type': type, 'Content-Length': end - start + 1,
        'Content-Range': `bytes ${start}-${end}/${size}`, 'Accept-Ranges': 'bytes' });
      if (req.method === 'HEAD') { res.end(); return; }
      fs.createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { ...hdr, 'Content-Type': type, 'Content-Length': size, 'Accept-Ranges': 'bytes' });
    if (req.method === 'HEAD') { res.end(); return; }
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

// ---------------------------------------------------------------- building
function build(out) {
  const env = { ...process.env, GOOS: 'js', GOARCH: 'wasm' };
  log('building harmony-bench.wasm (-tags harmonybench: the engine with benchUNet) and the native harmony binary …');
  execFileSync('go', ['build', '-trimpath', '-tags', 'harmonybench', '-o', path.join(out, 'harmony-bench.wasm'), './wasm'], { cwd: REPO, env, stdio: 'inherit' });
  execFileSync('go', ['build', '-trimpath', '-o', path.join(out, 'harmony'), './cmd/harmony'], { cwd: REPO, stdio: 'inherit' });
  const goroot = execFileSync('go', ['env', 'GOROOT'], { encoding: 'utf8' }).trim();
  fs.copyFileSync(path.join(goroot, 'lib/wasm/wasm_exec.js'), path.join(out, 'wasm_exec.js'));
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO, encoding: 'utf8' }).stdout.trim() !== '';
  return `${rev}${dirty ? '+dirty' : ''}`;
}

function routesFor(out) {
  return [
    ['/bench.html', path.join(REPO, 'www/bench.html')],
    ['/bench.js', path.join(REPO, 'www/bench.js')],
    ['/harmony-bench.wasm', path.join(out, 'harmony-bench.wasm')],
    ['/wasm_exec.js', path.join(out, 'wasm_exec.js')],
    ['/golden_io.safetensors', GOLDEN],
    ['/models/m/', MODEL],
  ];
}

// ---------------------------------------------------------------- ours in Chromium
// Server, flags and process handling are those of the harness's run_chromium.mjs.
async function oursChromium(out, timeoutS, profileKernels = false) {
  let resolveReport, timingSnap = null, timingUsage = null, callSnap = null;
  const perCall = [];
  const pageLog = [];
  const quiet = await waitQuiet({ maxWaitS: +(args['wait-quiet'] || 0), log });
  const reportP = new Promise((r) => { resolveReport = r; });
  const server = await serve(routesFor(out), (url, body) => {
    if (url.pathname === '/log') for (const l of JSON.parse(body)) { pageLog.push(l); if (args.verbose) log('page:', l); }
    else if (url.pathname === '/mark') {
      const ph = url.searchParams.get('phase');
      if (ph === 'start') timingSnap = snapshot();
      else if (ph === 'end') { if (timingSnap) timingUsage = usage(timingSnap, snapshot()); }
      else if (ph === 'before') callSnap = snapshot();
      else if (ph === 'after' && callSnap) perCall[+url.searchParams.get('i')] = usage(callSnap, snapshot());
    } else if (url.pathname === '/report') resolveReport(JSON.parse(body));
  });
  const port = server.address().port;
  const q = new URLSearchParams({ model: '/models/m/', golden: '/golden_io.safetensors', runs: RUNS, warmup: WARMUP });
  if (profileKernels) q.set("profile", "1");
  if (SYNTHETIC) q.set('synthetic', SYNTHETIC);
  if (args['no-subgroups']) q.set('subgroups', '0');
  const pageUrl = `http://127.0.0.1:${port}/bench.html?${q}`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'harmony-chrome-'));
  const flags = ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    '--disable-default-apps', '--disable-extensions', '--metrics-recording-only', '--disable-breakpad',
    '--disable-renderer-backgrounding', '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1', '--proxy-server=127.0.0.1:9',
    `--user-data-dir=${profile}`, ...(args.flags ? args.flags.split(/\s+/).filter(Boolean) : []), pageUrl];
  const chromeVersion = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).trim();
  const chromeLog = fs.openSync(path.join(profile, 'chrome.log'), 'w');
  const child = spawn(CHROMIUM, flags, { detached: true, stdio: ['ignore', chromeLog, chromeLog] });
  log('ours-chromium: chromium pid', child.pid, chromeVersion, pageUrl);
  let exited = false;
  child.on('exit', () => { exited = true; });
  const timer = new Promise((r) => setTimeout(() => r({ error: `timeout after ${timeoutS}s` }), timeoutS * 1000));
  const crash = new Promise((r) => child.on('exit', () => setTimeout(() => r({ error: 'chromium exited before report' }), 500)));
  const report = await Promise.race([reportP, timer, crash]);
  if (!exited) {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    for (let i = 0; i < 50 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
    if (!exited) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  server.close();
  const chromeTail = fs.readFileSync(path.join(profile, 'chrome.log'), 'utf8').split('\n')
    .filter((l) => l.trim() && !/dbus|DBus|UPower/.test(l)).slice(-15);
  fs.rmSync(profile, { recursive: true, force: true });
  const rec = { path: profileKernels ? "ours-chromium-profile" : "ours-chromium", runtime: 'harmony.wasm (Go) in Chromium', browser: chromeVersion,
    chromium_flags: flags.slice(0, -1).filter((f) => !f.startsWith('--user-data-dir')), machine_before: quiet, ...report };
  if (report.result) {
    report.result.per_call = perCall.slice(WARMUP);
    report.result.machine_during_timing = timingUsage;
    rec.clean = cleanStats(report.result.times_ms, perCall.slice(WARMUP));
  }
  if (report.error) { rec.page_log_tail = pageLog.slice(-30); rec.chrome_log_tail = chromeTail; }
  return rec;
}

// ---------------------------------------------------------------- ours in Node + Dawn
// The parent spawns this file with --child-node, like the harness runs
// ort_web_node.mjs in a process of its own (procmon's "own" is that tree).
async function oursNode(out, timeoutS) {
  const env = { ...process.env, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES || SWIFTSHADER_ICD };
  const file = path.join(out, 'ours-node.tmp.json');
  fs.rmSync(file, { force: true });
  const res = spawnSync(process.execPath, ['--stack-size=8192', fileURLToPath(import.meta.url), '--child-node', file,
    '--build-dir', out, '--peers', PEERS, ...(SYNTHETIC ? ['--synthetic', SYNTHETIC] : []), '--model', MODEL, '--golden', GOLDEN, '--runs', String(RUNS), '--warmup', String(WARMUP),
    ...(args['wait-quiet'] ? ['--wait-quiet', args['wait-quiet']] : []), ...(args['no-subgroups'] ? ['--no-subgroups'] : [])],
  { env, encoding: 'utf8', timeout: timeoutS * 1000, stdio: ['ignore', 'inherit', 'inherit'] });
  if (!fs.existsSync(file)) return { path: 'ours-node', error: `child exited ${res.status} ${res.signal || ''} without a record` };
  const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.rmSync(file);
  return rec;
}

async function childNode() {
  const out = path.resolve(args['build-dir']);
  const require = createRequire(pathToFileURL(path.join(PEERS, 'package.json')).href);
  const webgpu = await import(pathToFileURL(require.resolve('webgpu')).href);
  Object.assign(globalThis, webgpu.globals);
  let gpu = webgpu.create([]);
  globalThis.navigator = { gpu };
  globalThis.require = createRequire(import.meta.url);
  globalThis.fs = fs;
  globalThis.path = path;
  const quiet = await waitQuiet({ maxWaitS: +(args['wait-quiet'] || 0), log });
  const server = await serve(routesFor(out), () => {});
  const base = `http://127.0.0.1:${server.address().port}`;
  globalThis.require(path.join(out, 'wasm_exec.js'));
  const go = new globalThis.Go();
  go.env = { TMPDIR: os.tmpdir() };
  const ready = new Promise((r) => { globalThis.__harmonyReady = r; });
  const { instance, module } = await WebAssembly.instantiate(fs.readFileSync(path.join(out, 'harmony-bench.wasm')), go.importObject);
  globalThis.wasm = { instance, module };
  go.run(instance);
  const harmony = await ready;
  let timingSnap, timingUsage, callSnap;
  const perCall = [];
  let rec;
  try {
    const r = await harmony.benchUNet({ model: `${base}/models/m/`, golden: `${base}/golden_io.safetensors`, warmup: WARMUP, runs: RUNS,
      synthetic: SYNTHETIC, subgroups: !args['no-subgroups'],
      hook: async (phase, i) => {
        if (phase === 'start') timingSnap = snapshot();
        else if (phase === 'end') timingUsage = usage(timingSnap, snapshot());
        else if (phase === 'before') callSnap = snapshot();
        else if (phase === 'after') perCall[i] = usage(callSnap, snapshot());
        return null;
      } });
    const report = JSON.parse(r.json);
    report.result.per_call = perCall.slice(WARMUP);
    report.result.machine_during_timing = timingUsage;
    let webgpuDir = path.dirname(require.resolve('webgpu'));
    while (!fs.existsSync(path.join(webgpuDir, 'package.json')) && webgpuDir !== '/') webgpuDir = path.dirname(webgpuDir);
    const webgpuPkg = JSON.parse(fs.readFileSync(path.join(webgpuDir, 'package.json'), 'utf8'));
    rec = { path: 'ours-node', runtime: `harmony.wasm (Go) in Node ${process.version}`, webgpu_pkg: `webgpu ${webgpuPkg.version} (dawn.node)`,
      VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES || null, machine_before: quiet, ...report,
      clean: cleanStats(report.result.times_ms, perCall.slice(WARMUP)),
      out_sample_b64: Buffer.from(r.output.buffer).toString('base64') };
  } catch (e) {
    rec = { path: 'ours-node', error: String((e && e.stack) || e) };
  }
  fs.writeFileSync(args['child-node'], JSON.stringify(rec));
  gpu = null;
  server.close();
  process.exit(rec.error ? 1 : 0);
}

// ---------------------------------------------------------------- ours natively
function oursNative(out, timeoutS) {
  const file = path.join(out, 'ours-native.tmp.json'), f32 = path.join(out, 'ours-native.tmp.f32');
  const src = SYNTHETIC ? ['--synthetic', SYNTHETIC] : ['--model', MODEL, '--golden', GOLDEN];
  const res = spawnSync(path.join(out, 'harmony'), ['peer', ...src, '--runs', String(RUNS),
    '--warmup', String(WARMUP), '--out', file, '--out-f32', f32, '--tag', 'ours-native'],
  { encoding: 'utf8', timeout: timeoutS * 1000, stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0) return { path: 'ours-native', error: `harmony peer exited ${res.status} ${res.signal || ''}` };
  const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
  rec.clean = cleanStats(rec.result.times_ms, rec.result.per_call);
  rec.out_sample_b64 = fs.readFileSync(f32).toString('base64');
  fs.rmSync(file); fs.rmSync(f32);
  return rec;
}

// ---------------------------------------------------------------- ORT through the harness
const ORT = {
  'ort-chromium-native': ['bench/run_chromium.mjs', '--ep', 'webgpu', '--build', 'native'],
  'ort-chromium-jsep': ['bench/run_chromium.mjs', '--ep', 'webgpu', '--build', 'jsep'],
  'ort-chromium-wasm': ['bench/run_chromium.mjs', '--ep', 'wasm', '--build', 'wasm', '--threads', '2'],
  'ort-node-native': ['bench/ort_web_node.mjs', '--build', 'native'],
  'ort-node-jsep': ['bench/ort_web_node.mjs', '--build', 'jsep'],
  'ort-node-cpu': ['bench/ort_node_cpu.mjs'],
};
const ORT_TAG = {
  'ort-chromium-native': 'chromium-webgpu-native', 'ort-chromium-jsep': 'chromium-webgpu-jsep', 'ort-chromium-wasm': 'chromium-wasm-wasm-t2',
  'ort-node-native': 'node-dawn-webgpu-native', 'ort-node-jsep': 'node-dawn-webgpu-jsep', 'ort-node-cpu': 'ort-node-cpu',
};

function ort(p, timeoutS) {
  const env = { ...process.env };
  if (p.startsWith('ort-node-') && p !== 'ort-node-cpu') env.VK_ICD_FILENAMES = env.VK_ICD_FILENAMES || SWIFTSHADER_ICD;
  const extra = [...ORT[p], '--model', 'tiny', '--runs', String(RUNS), '--warmup', String(WARMUP)];
  if (args['wait-quiet']) extra.push('--wait-quiet', args['wait-quiet']);
  if (p !== 'ort-node-cpu' && args.placement !== undefined) extra.push('--placement', args.placement);
  const res = spawnSync(process.execPath, extra, { cwd: PEERS, env, encoding: 'utf8', timeout: timeoutS * 1000, stdio: ['ignore', 'pipe', 'inherit'] });
  const tag = ORT_TAG[p];
  const file = path.join(PEERS, `results/${tag}.tiny.json`);
  if (res.status !== 0 || !fs.existsSync(file)) return { path: p, error: `harness exited ${res.status} ${res.signal || ''}: ${(res.stdout || '').slice(-500)}` };
  const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
  rec.harness_path = rec.path;
  rec.path = p;
  const f32 = path.join(PEERS, `results/outputs/${tag}.tiny.f32`);
  if (fs.existsSync(f32)) rec.out_sample_b64 = fs.readFileSync(f32).toString('base64');
  return rec;
}

// ---------------------------------------------------------------- summary
// Normalizes a record: ours keep their figures under .result.
function figures(rec) {
  const r = rec.result || rec;
  const check = r.check_vs_torch_golden || {};
  const per = (r.per_call || rec.per_call || []).filter(Boolean);
  const fs_ = rec.clean?.foreign_share_per_run ?? per.map((u) => u.foreign_share);
  return { path: rec.path, median: r.median_ms, min: r.min_ms, gflops: r.gflops_at_median, maxAbs: check.max_abs,
    rel: check.max_abs_over_max_ref ?? (check.max_abs !== undefined ? check.max_abs / 2.1205620765686035 : undefined),
    nClean: rec.clean?.n_clean, cleanMedian: rec.clean?.clean_median_ms, maxForeign: fs_.length ? Math.max(...fs_) : undefined,
    foreignTiming: (r.machine_during_timing || rec.machine_during_timing)?.foreign_share,
    dispatches: r.dispatches_per_call, adapter: r.adapter || rec.adapter_used?.description || rec.adapter_used?.architecture || (rec.path === 'ort-node-cpu' ? 'CPU' : rec.path === 'ort-chromium-wasm' ? 'CPU (wasm)' : ''),
    error: rec.error };
}

const BASE_OF = (p) => (p.startsWith('ort-chromium') ? 'ours-chromium' : p === 'ort-node-cpu' ? 'ours-native' : p.startsWith('ort-node') ? 'ours-node' : null);
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '–' : typeof v === 'number' ? v.toFixed(d) : String(v));
const sci = (v) => (v === undefined || v === null ? '–' : v.toExponential(1));

function summary(all, meta) {
  const lines = [`# Side by side with onnxruntime (${MODEL_NAME} UNet, ${meta.date})`, '',
    `Engine ${meta.rev}; ${meta.chromium}; Node ${process.version}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model}). ` +
    `Rule: ${WARMUP} warm-ups, ${RUNS} timed calls, median; one call = CPU inputs to CPU output. ` +
    `GFLOP per call: ${meta.gflop}. Repeats: ${meta.repeat}, in the order ${meta.paths.join(', ')}.`, '',
    '| round | path | adapter | median ms | min ms | GFLOP/s | max abs vs out_sample | /max ref | clean runs | max foreign share | dispatches | ORT/ours (median) |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const round of all) {
    const byPath = Object.fromEntries(round.recs.map((r) => [r.path, figures(r)]));
    for (const rec of round.recs) {
      const f = byPath[rec.path];
      const base = BASE_OF(rec.path) && byPath[BASE_OF(rec.path)];
      const ratio = base && f.median && base.median ? `${(f.median / base.median).toFixed(2)} (vs ${base.path})` : '';
      lines.push(`| ${round.n} | ${f.path}${f.error ? ` (error: ${String(f.error).slice(0, 80)})` : ''} | ${f.adapter || ''} | ${fmt(f.median)} | ${fmt(f.min)} | ${fmt(f.gflops, 3)} | ${sci(f.maxAbs)} | ${sci(f.rel)} | ${f.nClean ?? '–'}/${RUNS} | ${fmt(f.maxForeign, 3)} | ${f.dispatches ?? ''} | ${ratio} |`);
    }
  }
  // Ratios over rounds: the median of each round's ratio.
  const ratios = {};
  for (const round of all) {
    const byPath = Object.fromEntries(round.recs.map((r) => [r.path, figures(r)]));
    for (const p of Object.keys(byPath)) {
      const b = BASE_OF(p) && byPath[BASE_OF(p)];
      if (b && byPath[p].median && b.median) (ratios[p] ??= []).push(byPath[p].median / b.median);
    }
  }
  if (Object.keys(ratios).length) {
    lines.push('', '| ORT path | vs | ratio ORT/ours per round | median ratio |', '|---|---|---|---:|');
    for (const [p, rs] of Object.entries(ratios)) lines.push(`| ${p} | ${BASE_OF(p)} | ${rs.map((r) => r.toFixed(2)).join(', ')} | ${median(rs).toFixed(2)} |`);
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------- main
async function main() {
  const date = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const out = path.resolve(args.out || path.join(os.tmpdir(), `harmony-peer-${date}`));
  fs.mkdirSync(out, { recursive: true });
  const paths = (args.paths || 'ours-chromium,ort-chromium-native,ort-chromium-jsep,ours-node,ort-node-native,ours-native,ort-node-cpu,ort-chromium-wasm').split(',');
  for (const p of paths) if (!['ours-chromium', 'ours-chromium-profile', 'ours-node', 'ours-native'].includes(p) && !ORT[p]) throw new Error(`unknown path ${p}`);
  if (SYNTHETIC && paths.some((p) => ORT[p])) throw new Error('--synthetic runs our paths only (the ONNX file of that model is not here)');
  const rev = args['no-build'] ? 'prebuilt' : build(out);
  const timeoutS = +(args.timeout || 900);
  const golden = SYNTHETIC ? null : parseSafetensors(fs.readFileSync(GOLDEN));
  const repeat = +(args.repeat || 1);
  const all = [];
  for (let n = 1; n <= repeat; n++) {
    const round = { n, recs: [] };
    for (const p of paths) {
      log(`round ${n}: ${p} …`);
      const t0 = Date.now();
      let rec;
      try {
        rec = p === 'ours-chromium' || p === 'ours-chromium-profile' ? await oursChromium(out, timeoutS, p === 'ours-chromium-profile') : p === 'ours-node' ? await oursNode(out, timeoutS)
          : p === 'ours-native' ? oursNative(out, timeoutS) : ort(p, timeoutS);
      } catch (e) {
        rec = { path: p, error: String((e && e.stack) || e) };
      }
      rec.wall_s = (Date.now() - t0) / 1000;
      if (rec.out_sample_b64) {
        const buf = Buffer.from(rec.out_sample_b64, 'base64');
        fs.writeFileSync(path.join(out, `${p}.${n}.f32`), buf);
        if (golden) rec.check_recomputed = compare(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), golden.out_sample.data);
        delete rec.out_sample_b64;
      }
      fs.writeFileSync(path.join(out, `${p}.${n}.json`), JSON.stringify(rec, null, 1));
      const f = figures(rec);
      log(`round ${n}: ${p}: median ${fmt(f.median)} ms, min ${fmt(f.min)} ms, max|Δ| ${sci(f.maxAbs)}, clean ${f.nClean ?? '–'}/${RUNS}` +
        `${f.error ? `, ERROR ${String(f.error).slice(0, 300)}` : ''}`);
      if (rec.profile_per_call) {
        const rows = rec.profile_per_call;
        const lines = ['| ms/call | % | dispatches | workgroups | kernel |', '|---:|---:|---:|---:|---|',
          ...rows.map((r) => `| ${r.ms_per_call.toFixed(1)} | ${r.percent.toFixed(1)} | ${r.dispatches_per_call} | ${r.workgroups_per_call} | ${r.kernel} |`)];
        fs.writeFileSync(path.join(out, `${p}.${n}.profile.md`), lines.join('\n') + '\n');
        log(lines.join('\n'));
      }
      round.recs.push(rec);
    }
    all.push(round);
    const chromium = fs.existsSync(CHROMIUM) ? execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).trim() : 'no chromium';
    const gflop = round.recs.map((r) => r.result?.gflop_per_call).find(Boolean) ?? 0.937;
    const md = summary(all, { date, rev, chromium, gflop: +gflop.toFixed(3), repeat: n, paths });
    fs.writeFileSync(path.join(out, 'summary.md'), md);
  }
  process.stdout.write(fs.readFileSync(path.join(out, 'summary.md'), 'utf8'));
  log('results in', out);
}

if (args['child-node']) await childNode();
else {
  await main();
  process.exit(0); // keep-alive sockets of the page's server would hold the loop
}
