// app.js: the Harmony page. It starts the wasm engine (harmony.wasm, built
// from ../wasm), wires the form to its JS API (globalThis.harmony, see
// wasm/api.go) and shows progress, previews, results and errors. The photo
// is read with the File API and handed to the engine as bytes: it never
// goes into a request. For ELITE, the subject mask is painted over the
// photo (mask.js) and handed over the same way.

import { MaskEditor } from './mask.js';

const $ = (id) => document.getElementById(id);

const SETTINGS_KEY = 'harmony.settings.v1';
const FIELDS = ['base', 'model-source', 'encoder-url', 'mappers-url', 'clip-url', 'dino-url', 'placeholder', 'local-weight', 'model-url', 'precision', 'class', 'prompt', 'negative', 'steps',
  'guidance', 'seed', 'width', 'height', 'harmony', 'compare', 'ortho', 'ortho-mode',
  'ortho-exclude-class', 'swap', 'swap-mode', 'swap-layers', 'swap-start', 'mask-level',
  'mask-tokens', 'mask-threshold', 'visual-prompt', 'prompt-reps', 'scheduler', 'preview-every'];

const BASE_NAMES = { blipdiffusion: 'BLIP-Diffusion', elite: 'ELITE' };

const KINDS = [
  ['harmony', 'Harmony'],
  ['baseline', '(same seed)'],
  ['visual', 'Visual-only process'],
  ['mask', 'Subject mask'],
];

// Each base model's defaults, swapped in when the base changes for the
// fields still holding the other one's (ELITE names the subject by a word
// of the prompt, BLIP-Diffusion by the class; ELITE's own run is 100 LMS
// steps at guidance 5).
const BASE_DEFAULTS = {
  blipdiffusion: { prompt: 'swimming underwater', class: 'dog', steps: '25', guidance: '7.5' },
  elite: { prompt: 'a S swimming underwater', class: '', steps: '100', guidance: '5' },
};

// The visual-only prompts each base offers (S: the placeholder word).
const VISUAL_PROMPTS = {
  blipdiffusion: [['a {class}', 'a {class}'], ['a', 'a']],
  elite: [['a S', 'a S'], ['a photo of a S', 'a photo of a S'], ['S', 'S']],
};

let engine = null;        // globalThis.harmony once the wasm is running
let modelKey = null;      // what is loaded: source + url + precision
let photo = null;         // {bytes: Uint8Array, name: string}
let folderFiles = null;   // File[] of a picked or dropped folder
let encoderFiles = null;  // ELITE: File[] of a picked image-encoder folder
let mappersFiles = null;  // ELITE: File[] of a picked mappers folder
let clipFiles = null;     // scores: File[] of a picked CLIP folder
let dinoFiles = null;     // scores: File[] of a picked DINO folder
let mask = null;          // the MaskEditor over the photo
let busy = false;
const urls = [];          // object URLs to revoke on the next run

function saveSettings() {
  const s = {};
  for (const id of FIELDS) {
    const el = $(id);
    s[id] = el.type === 'checkbox' ? el.checked : el.value;
  }
  try { localStorage.setItem(SETTINGS_KEY, JSON.stringify(s)); } catch { /* storage off */ }
}

function loadSettings() {
  let s = null;
  try { s = JSON.parse(localStorage.getItem(SETTINGS_KEY) || 'null'); } catch { s = null; }
  if (!s) return;
  for (const id of FIELDS) {
    if (!(id in s)) continue;
    const el = $(id);
    if (el.type === 'checkbox') el.checked = !!s[id]; else el.value = s[id];
    // a choice of the other base's list: set once updateBase fills it
    if (el.tagName === 'SELECT' && el.value !== s[id]) el.dataset.saved = s[id];
  }
}

function showError(err) {
  const el = $('error');
  if (!err) { el.hidden = true; el.textContent = ''; return; }
  const code = err.code ? `[${err.code}] ` : '';
  el.textContent = code + (err.message || String(err));
  el.dataset.code = err.code || 'error';
  el.hidden = false;
}

function showWarnings(list) {
  const el = $('warnings');
  el.textContent = (list || []).join('\n');
  el.hidden = !list || list.length === 0;
}

function updateSourceRows() {
  const v = $('model-source').value;
  $('model-url-row').hidden = !(v === 'pack' || v === 'hf');
  $('model-folder-row').hidden = v !== 'folder';
}

// updateBase shows what the chosen base model needs: ELITE's extra
// sources, its knobs and the mask editor over the photo.
function updateBase() {
  const elite = $('base').value === 'elite';
  $('elite-sources').hidden = !elite;
  $('elite-knobs').hidden = !elite;
  $('mask-tools').hidden = !elite;
  $('mask-overlay').hidden = !elite;
  $('photo-stage').classList.toggle('painting', elite);
  for (const el of document.querySelectorAll('.base-name')) el.textContent = BASE_NAMES[$('base').value];
  $('class').placeholder = elite ? 'optional for ELITE' : '';
  const vp = $('visual-prompt'), keep = vp.dataset.saved ?? vp.value;
  delete vp.dataset.saved;
  vp.textContent = '';
  for (const [value, text] of VISUAL_PROMPTS[$('base').value]) vp.append(new Option(text, value, false, value === keep));
}

function updateMaskStatus(n) {
  const total = mask && mask.bits ? mask.bits.length : 0;
  $('mask-status').textContent = !total ? 'Choose a photo, then paint the subject on it.'
    : n === 0 ? 'No mask: the whole photo is the subject. Paint the subject on the photo, or load a mask.'
      : `Mask: ${(100 * n / total).toFixed(1)} % of the photo is the subject.`;
  $('mask-status').dataset.count = String(n);
}

function mb(n) { return (n / 1048576).toFixed(1) + ' MB'; }

function fmtSeconds(s) {
  if (!isFinite(s) || s < 0) return '';
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function currentModelKey() {
  const elite = $('base').value === 'elite';
  return [$('base').value, $('model-source').value, $('model-url').value.trim(), $('precision').value,
    folderFiles ? folderFiles.length : 0,
    elite ? $('encoder-url').value.trim() : '', elite && encoderFiles ? encoderFiles.length : 0,
    elite ? $('mappers-url').value.trim() : '', elite && mappersFiles ? mappersFiles.length : 0].join('|');
}

// partSource is the request for one of ELITE's separately given parts (a
// URL or Hub id typed, else a picked folder), or undefined to take it from
// the model.
function partSource(url, files) {
  url = url.trim();
  if (url) {
    const hub = !/^https?:\/\//.test(url) || /^https?:\/\/([^/]+\.)?(huggingface|hf)\.co\//.test(url);
    return { source: hub ? 'hf' : 'pack', url };
  }
  if (files && files.length) return { source: 'folder', files };
  return undefined;
}

// modelOrigins lists the remote origins the chosen model is read from.
function modelOrigins() {
  const out = [];
  const add = (src, url) => {
    if (src !== 'pack' && src !== 'hf') return;
    const o = remoteOrigin(src, url);
    if (o && o !== location.origin && !out.includes(o)) out.push(o);
  };
  add($('model-source').value, $('model-url').value.trim());
  if ($('base').value === 'elite') {
    for (const p of [partSource($('encoder-url').value, null), partSource($('mappers-url').value, null)]) {
      if (p) add(p.source, p.url);
    }
  }
  for (const p of [partSource($('clip-url').value, null), partSource($('dino-url').value, null)]) {
    if (p) add(p.source, p.url);
  }
  return out;
}

// The CSP lets the page fetch only from its own origin and the model origin
// in ?model-origin=; switching to a remote model reloads the page with it.
function remoteOrigin(src, url) {
  if (src === 'hf') {
    if (!/^https?:\/\//.test(url)) return 'https://huggingface.co';
  }
  try { return new URL(url).origin; } catch { return null; }
}

function ensureOriginAllowed() {
  const need = modelOrigins();
  const params = new URLSearchParams(location.search);
  const have = params.getAll('model-origin');
  if (need.every((o) => have.includes(o))) return true;
  saveSettings();
  params.delete('model-origin');
  for (const o of need) params.append('model-origin', o);
  location.search = params.toString();
  return false;
}

async function loadModel() {
  if (!engine) throw Object.assign(new Error('the engine is not running'), { code: 'no-webgpu' });
  const key = currentModelKey();
  if (modelKey === key) return;
  if (!ensureOriginAllowed()) return new Promise(() => {});
  const src = $('model-source').value;
  const base = $('base').value;
  const req = { base, source: src, precision: $('precision').value };
  if (base === 'elite') {
    if (src === 'demo') throw Object.assign(new Error('the bundled demo is a BLIP-Diffusion model: choose an ELITE or Stable Diffusion model as the source'), { code: 'bad-model' });
    const enc = partSource($('encoder-url').value, encoderFiles), map = partSource($('mappers-url').value, mappersFiles);
    if (enc) req.imageEncoder = enc;
    if (map) req.mappers = map;
  }
  if (src === 'demo') req.url = new URL('models/tiny/manifest.json', location.href).href;
  if (src === 'pack' || src === 'hf') req.url = $('model-url').value.trim();
  // ?fetch-timeout-ms= shortens how long a download may wait on a silent
  // server (the engine's default otherwise).
  const timeoutMs = +new URLSearchParams(location.search).get('fetch-timeout-ms');
  if (timeoutMs > 0) req.timeoutMs = timeoutMs;
  if (src === 'folder') {
    if (!folderFiles || folderFiles.length === 0) throw Object.assign(new Error('pick or drop a model folder first'), { code: 'bad-model' });
    req.files = folderFiles;
  }
  $('model-status').textContent = 'Loading…';
  $('model-progress').value = 0;
  modelKey = null;
  let cached = 0;
  let info;
  try {
    info = await engine.loadModel(req, (ev) => {
      cached = ev.cached || 0;
      const frac = ev.total > 0 ? ev.done / ev.total : 0;
      $('model-progress').value = frac;
      $('model-status').textContent = `${mb(ev.done)} of ${mb(ev.total)}` + (ev.fromCache ? ' (from cache)' : '') + (ev.file ? ` — ${ev.file}` : '');
    });
  } catch (e) {
    $('model-progress').value = 0;
    $('model-status').textContent = e && e.code === 'cancelled' ? 'Cancelled: no model loaded.' : 'No model loaded.';
    throw e;
  }
  modelKey = key;
  $('model-progress').value = 1;
  const fromCache = cached > 0 ? `; ${mb(cached)} read from this browser's cache` : '';
  $('model-status').textContent = `Loaded ${info.name} (${mb(info.bytes)} of weights on the GPU, ${info.precision}${fromCache}).`;
  showWarnings(info.warnings);
}

// loadScorers loads the CLIP and DINO weights the score line uses (both
// empty: scores off).
async function loadScorers() {
  if (!engine) throw Object.assign(new Error('the engine is not running'), { code: 'no-webgpu' });
  if (!ensureOriginAllowed()) return new Promise(() => {});
  const req = {};
  const clip = partSource($('clip-url').value, clipFiles), dino = partSource($('dino-url').value, dinoFiles);
  if (clip) req.clip = clip;
  if (dino) {
    req.dino = dino;
    // A folder with an original DINO checkpoint (.pth) and no transformers weights.
    const names = dino.files ? dino.files.map((f) => (f.relPath || f.webkitRelativePath || f.name).split('/').slice(1).join('/') || f.name) : [];
    const pth = names.find((n) => n.endsWith('.pth'));
    if (pth && !names.includes('model.safetensors') && !names.includes('pytorch_model.bin')) req.dinoFile = pth;
  }
  $('scorer-status').textContent = clip || dino ? 'Loading…' : 'Scores off.';
  try {
    const info = await engine.loadScorers(req, (ev) => {
      $('scorer-status').textContent = `${mb(ev.done)} of ${mb(ev.total)}` + (ev.file ? ` — ${ev.file}` : '');
    });
    const on = [info.clipT ? 'CLIP-T' : '', info.dino ? 'DINO' : ''].filter(Boolean);
    $('scorer-status').textContent = on.length ? `Scoring with ${on.join(' and ')}.` : 'Scores off.';
    $('scorer-status').dataset.on = on.join(',');
  } catch (e) {
    $('scorer-status').textContent = 'Scores off.';
    $('scorer-status').dataset.on = '';
    throw e;
  }
}

// showScores writes the score line under the results.
function showScores(scores) {
  const el = $('scores');
  globalThis.harmonyLastScores = scores || null; // for tests
  el.hidden = !scores;
  el.textContent = '';
  if (!scores) return;
  if (scores.error) {
    el.textContent = `Scores: ${scores.error}`;
    return;
  }
  const parts = [];
  for (const [kind, title] of KINDS) {
    const s = scores[kind];
    if (s && s.line) parts.push(`${kind === 'baseline' ? `${BASE_NAMES[$('base').value]} ${title}` : title}: ${s.line}`);
  }
  el.textContent = `Scores (text "${scores.text}"): ` + parts.join('; ');
}

async function setPhoto(file) {
  showError(null);
  const bytes = new Uint8Array(await file.arrayBuffer());
  photo = { bytes, name: file.name };
  const img = $('photo-preview');
  if (img.src) URL.revokeObjectURL(img.src);
  const url = URL.createObjectURL(file);
  // A new photo starts a new, empty mask at its size.
  mask.reset(0, 0);
  img.src = url;
  try {
    await img.decode();
    mask.reset(img.naturalWidth, img.naturalHeight);
  } catch { /* not a picture: checkPhoto says why */ }
  $('photo-figure').hidden = false;
  $('photo-caption').textContent = `${file.name}`;
  if (engine) {
    try {
      const info = await engine.checkPhoto(bytes, file.name);
      $('photo-caption').textContent = `${file.name} — ${info.width}×${info.height}`;
    } catch (e) {
      photo = null;
      $('photo-figure').hidden = true;
      showError(Object.assign(new Error(`${e.message || e} Choose another photo.`), { code: e.code }));
    }
  }
}

function options() {
  const v = (id) => $(id).value;
  const elite = v('base') === 'elite';
  return {
    base: v('base'), ...(elite ? { placeholder: v('placeholder').trim(), localWeight: +v('local-weight') } : {}),
    class: v('class').trim(), sourceClass: v('class').trim(), prompt: v('prompt'), negative: v('negative'),
    steps: +v('steps'), guidance: +v('guidance'), seed: +v('seed'), width: +v('width'), height: +v('height'),
    method: $('harmony').checked ? 'harmony' : elite ? 'plain' : 'blipdiffusion', compare: $('compare').checked,
    ortho: v('ortho'), orthoMode: v('ortho-mode'), orthoExcludeClass: v('ortho-exclude-class'),
    swap: v('swap'), swapMode: v('swap-mode'), swapLayers: v('swap-layers'), swapStart: v('swap-start'),
    maskLevel: v('mask-level'), maskTokens: v('mask-tokens'), maskThreshold: +v('mask-threshold'),
    visualPrompt: v('visual-prompt'), promptReps: +v('prompt-reps'), scheduler: v('scheduler'),
    previewEvery: +v('preview-every'),
  };
}

function showResults(res) {
  for (const u of urls.splice(0)) URL.revokeObjectURL(u);
  const box = $('results');
  box.textContent = '';
  for (let [kind, title] of KINDS) {
    const png = res[kind];
    if (!png) continue;
    title = kind === 'baseline' ? `${BASE_NAMES[$('base').value]} ${title}` : title;
    const url = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
    urls.push(url);
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    img.src = url;
    img.alt = title;
    img.dataset.kind = kind;
    const cap = document.createElement('figcaption');
    const span = document.createElement('span');
    span.textContent = title;
    const a = document.createElement('a');
    a.href = url;
    a.download = `${kind}-${$('seed').value}.png`;
    a.textContent = 'Download';
    a.setAttribute('role', 'button');
    cap.append(span, a);
    fig.append(img, cap);
    box.append(fig);
  }
}

async function generate() {
  if (busy) return;
  showError(null);
  showWarnings([]);
  saveSettings();
  busy = true;
  $('generate').disabled = true;
  $('cancel').disabled = false;
  $('progress').value = 0;
  $('progress-text').textContent = '';
  try {
    if (!photo) throw Object.assign(new Error('choose a photo of your subject first'), { code: 'bad-photo' });
    await loadModel();
    const opts = options();
    if (opts.base === 'elite') {
      const m = await mask.png();
      if (m) { opts.mask = m; opts.maskName = 'painted mask'; } // absent: the whole photo is the subject
    }
    const t0 = performance.now();
    const res = await engine.generate(photo.bytes, photo.name, opts, (ev) => {
      $('progress').value = ev.total > 0 ? ev.step / ev.total : 0;
      $('progress-text').textContent = `${ev.phase} ${ev.step}/${ev.total}` + (ev.eta > 0 ? ` — about ${fmtSeconds(ev.eta)} left` : '');
      if (ev.preview) {
        const url = URL.createObjectURL(new Blob([ev.preview], { type: 'image/png' }));
        const img = $('preview');
        if (img.src) URL.revokeObjectURL(img.src);
        img.src = url;
        img.hidden = false;
      }
    });
    $('progress').value = 1;
    $('progress-text').textContent = `Done in ${fmtSeconds((performance.now() - t0) / 1000)}.`;
    showWarnings(res.warnings);
    showResults(res);
    showScores(res.scores);
  } catch (e) {
    $('progress-text').textContent = e && e.code === 'cancelled' ? 'Cancelled.' : '';
    if (!(e && e.code === 'cancelled')) showError(e);
  } finally {
    busy = false;
    $('generate').disabled = false;
    $('cancel').disabled = true;
  }
}

function dropTarget(el, onFiles) {
  el.addEventListener('dragover', (e) => { e.preventDefault(); el.classList.add('dragover'); });
  el.addEventListener('dragleave', () => el.classList.remove('dragover'));
  el.addEventListener('drop', async (e) => {
    e.preventDefault();
    el.classList.remove('dragover');
    await onFiles(e.dataTransfer);
  });
}

// readDroppedFolder walks a dropped directory into File objects with their
// relative paths (webkitRelativePath is empty for dropped files).
async function readDroppedFolder(dt) {
  const out = [];
  const walk = (entry, prefix) => new Promise((resolve) => {
    if (entry.isFile) {
      entry.file((f) => { out.push(Object.assign(f, { relPath: prefix + f.name })); resolve(); }, () => resolve());
    } else if (entry.isDirectory) {
      const r = entry.createReader();
      const all = [];
      const next = () => r.readEntries(async (ents) => {
        if (ents.length === 0) {
          for (const c of all) await walk(c, prefix + entry.name + '/');
          resolve();
        } else { all.push(...ents); next(); }
      }, () => resolve());
      next();
    } else resolve();
  });
  for (const item of dt.items) {
    const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
    if (entry) await walk(entry, '');
  }
  return out;
}

function startMask() {
  mask = new MaskEditor($('photo-preview'), $('mask-overlay'), updateMaskStatus);
  const size = () => { mask.size = +$('mask-size').value; $('mask-size-value').textContent = `${mask.size} px`; };
  $('mask-size').addEventListener('input', size);
  size();
  for (const id of ['mask-brush', 'mask-eraser']) $(id).addEventListener('change', () => { mask.tool = $('mask-eraser').checked ? 'eraser' : 'brush'; });
  $('mask-clear').addEventListener('click', () => mask.clear());
  $('mask-file').addEventListener('change', async () => {
    const f = $('mask-file').files[0];
    if (!f) return;
    showError(null);
    try { await mask.load(f); } catch (e) { showError(e); }
    $('mask-file').value = '';
  });
  updateMaskStatus(0);
  // For tests: the mask as the engine would get it.
  globalThis.harmonyMaskPNG = () => mask.png();
}

function switchBase() {
  const base = $('base').value, other = base === 'elite' ? 'blipdiffusion' : 'elite';
  for (const [id, v] of Object.entries(BASE_DEFAULTS[base])) {
    if ($(id).value === BASE_DEFAULTS[other][id]) $(id).value = v;
  }
  updateBase();
  modelKey = null;
  saveSettings();
}

async function start() {
  loadSettings();
  startMask();
  updateSourceRows();
  updateBase();
  $('base').addEventListener('change', switchBase);
  for (const id of ['encoder-url', 'mappers-url']) $(id).addEventListener('change', () => { modelKey = null; });
  $('encoder-folder').addEventListener('change', () => { encoderFiles = [...$('encoder-folder').files]; modelKey = null; });
  $('mappers-folder').addEventListener('change', () => { mappersFiles = [...$('mappers-folder').files]; modelKey = null; });
  for (const id of FIELDS) $(id).addEventListener('change', saveSettings);
  $('model-source').addEventListener('change', () => { updateSourceRows(); modelKey = null; });
  $('precision').addEventListener('change', () => { modelKey = null; });
  $('model-url').addEventListener('change', () => { modelKey = null; });
  $('photo').addEventListener('change', () => { if ($('photo').files[0]) setPhoto($('photo').files[0]); });
  $('model-folder').addEventListener('change', () => { folderFiles = [...$('model-folder').files]; modelKey = null; });
  dropTarget($('photo-panel'), async (dt) => { if (dt.files[0]) await setPhoto(dt.files[0]); });
  dropTarget($('model-h').parentElement, async (dt) => {
    folderFiles = await readDroppedFolder(dt);
    $('model-source').value = 'folder';
    updateSourceRows();
    modelKey = null;
  });
  $('generate').addEventListener('click', generate);
  $('cancel').addEventListener('click', () => engine && engine.cancel());
  $('load-model').addEventListener('click', async () => {
    showError(null);
    try { modelKey = null; await loadModel(); } catch (e) { showError(e); }
  });
  $('clip-folder').addEventListener('change', () => { clipFiles = [...$('clip-folder').files]; });
  $('dino-folder').addEventListener('change', () => { dinoFiles = [...$('dino-folder').files]; });
  $('load-scorers').addEventListener('click', async () => {
    showError(null);
    try { await loadScorers(); } catch (e) { showError(e); }
  });
  $('clear-cache').addEventListener('click', async () => {
    try {
      const n = await engine.clearCache();
      $('model-status').textContent = `Cleared ${n} downloaded model piece${n === 1 ? '' : 's'} from this browser.`;
      modelKey = null;
    } catch (e) { showError(e); }
  });

  if (!('gpu' in navigator)) {
    $('adapter').textContent = 'This browser has no WebGPU.';
    showError(Object.assign(new Error('WebGPU is not available in this browser. Try a recent Chrome, Edge or Safari, or enable WebGPU.'), { code: 'no-webgpu' }));
    return;
  }
  try {
    const go = new Go();
    const ready = new Promise((resolve) => { globalThis.__harmonyReady = resolve; });
    const result = await WebAssembly.instantiateStreaming(fetch('harmony.wasm'), go.importObject);
    globalThis.wasm = result;
    go.run(result.instance);
    engine = await ready;
    const info = await engine.init();
    const f16 = info.shaderF16 ? 'f16 kernels' : 'fp16 weights unpacked to f32';
    $('adapter').textContent = `GPU: ${info.adapter}${info.fallback ? ' (software)' : ''} — ${f16}${info.subgroupSize ? `, subgroups of ${info.subgroupSize}` : ""}, up to ${mb(info.limits.maxStorageBufferBindingSize)} per binding.`;
    showWarnings(info.warnings);
    if ($('model-source').value === 'demo' && $('base').value !== 'elite') loadModel().catch(showError);
  } catch (e) {
    $('adapter').textContent = 'The engine did not start.';
    showError(e);
  }
}

start();
