// bench.js times one UNet call of the engine under the onnxruntime peer
// harness's rule (its README): the page counterpart of the
// harness's bench/web/bench.mjs, driven by wasm/node/bench.mjs. Query:
// model (URL of a diffusers folder; only unet/ is loaded, in f32), golden
// (URL of golden_io.safetensors), warmup, runs, wasm (URL of the engine
// built with -tags harmonybench; default harmony-bench.wasm, which serve.go
// builds when first requested), profile (1: per-kernel profile, serialized
// dispatches), subgroups (0: keep the kernels off subgroups), synthetic
// ("medium": the harness's medium UNet with random weights) and sample
// (B,C,H,W).
// Console lines go to POST /log, the timing marks around each call to
// POST /mark (the driver records foreign CPU load there, outside the timed
// window), and the result to POST /report.
const q = new URLSearchParams(location.search);
const pending = [];
const flush = () => {
  if (pending.length) fetch('/log', { method: 'POST', body: JSON.stringify(pending.splice(0)) });
};
setInterval(flush, 500);
const status = (s) => { document.getElementById('out').textContent = s; pending.push(`status: ${s}`); };
window.addEventListener('error', (e) => pending.push(`window.error: ${e.message}`));

const b64 = (u8) => {
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
};

async function main() {
  status('loading harmony-bench.wasm');
  const go = new Go();
  const ready = new Promise((resolve) => { globalThis.__harmonyReady = resolve; });
  const { instance } = await WebAssembly.instantiateStreaming(fetch(q.get('wasm') || 'harmony-bench.wasm'), go.importObject);
  go.run(instance);
  const harmony = await ready;
  status('timing');
  const r = await harmony.benchUNet({
    model: new URL(q.get('model') || 'models/unet-fp32/', location.href).href,
    golden: new URL(q.get('golden') || 'golden_io.safetensors', location.href).href,
    warmup: +(q.get('warmup') || 2),
    runs: +(q.get('runs') || 7),
    profile: q.get('profile') === '1',
    subgroups: q.get('subgroups') !== '0',
    synthetic: q.get('synthetic') || '',
    sample: q.get('sample') ? q.get('sample').split(',').map(Number) : undefined,
    hook: async (phase, i) => {
      await fetch(`/mark?phase=${phase}&i=${i >= 0 ? i : ''}`, { method: 'POST', body: '' });
      if (phase === 'before' || phase === 'after') status(`${phase} call ${i}`);
      return null;
    },
  });
  const rec = JSON.parse(r.json);
  rec.user_agent = navigator.userAgent;
  rec.cross_origin_isolated = self.crossOriginIsolated;
  rec.out_sample_b64 = b64(new Uint8Array(r.output.buffer));
  return rec;
}

main().catch((e) => ({ error: String((e && e.stack) || e), code: e && e.code })).then(async (r) => {
  flush();
  status(r.error ? `error: ${r.error}` : 'done');
  await fetch('/report', { method: 'POST', body: JSON.stringify(r) });
});
