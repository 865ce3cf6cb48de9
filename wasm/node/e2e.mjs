// e2e.mjs drives the Harmony page in headless Chromium (Debian's chromium,
// through playwright-core; no browser download): it loads the page, picks
// the model and photo, generates with fixed settings, saves every result
// image, a screenshot and a JSON report of every request the page made.
//
//   node wasm/node/e2e.mjs --url http://127.0.0.1:PORT/ --photo in.png --out DIR \
//     [--source demo] [--class dog] [--prompt "swimming underwater"] [--steps 8] \
//     [--seed 42] [--width 48] [--height 32] [--guidance 7.5] [--harmony 1] [--timeout 1200]
//     [--base elite --model-url URL --placeholder S --local-weight 0.8 --paint-mask 1]
//     (ELITE: the model from a URL on the page's origin, a brush stroke painted as its mask)
//     [--clip-url URL --dino-url URL] (load the score line's CLIP/DINO first;
//     the report's scores are the line and its numbers)
//   node wasm/node/e2e.mjs --mode cache --url … --out DIR   (hosted pack: load, reload from
//     the browser cache, clear the cache, load again)
//   node wasm/node/e2e.mjs --mode folder --folder DIR --url … --out DIR   (a picked local folder)
//   node wasm/node/e2e.mjs --mode hub --hub URL --allow ORIGIN,ORIGIN --url … --out DIR
//     (a Hugging Face repository URL typed into the page, read from a stand-in Hub)
//   node wasm/node/e2e.mjs --mode faults --bad FILE,FILE --photo in.png --url … --out DIR
//     (photos the page must refuse or take, then a small generation that must work)
//   node wasm/node/e2e.mjs --mode faults --hang URL --query fetch-timeout-ms=N --url … --out DIR
//     (a pack URL that never answers, then the demo model)
//   node wasm/node/e2e.mjs --mode faults --corrupt URL --url … --out DIR
//     (a pack whose shard fails its hash, then the demo model)
//   node wasm/node/e2e.mjs --mode faults --cancel-pack URL --photo in.png --url … --out DIR
//     (cancel a slow pack download and a generation step, then generate again)
//   node wasm/node/e2e.mjs --mode faults --resume URL --url … --out DIR
//     (reload the page while a pack downloads, then load it again)
//   node wasm/node/e2e.mjs --mode mask --photo in.png --photo2 other.png --mask-file m.png --url … --out DIR
//     (ELITE's mask editor: brush and eraser strokes with real pointer events,
//     the mask read back as the engine gets it, a mask loaded from a file,
//     a new photo clearing it)
//
// Requests to any origin but the page's are aborted and listed in the
// report; the report also says whether any request carried the photo. In
// hub mode nothing is intercepted (interception could change how the
// browser handles CORS, which is what that mode tests): requests are only
// watched, and any to an origin but the page's and --allow's is listed.
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { chromium } from 'playwright-core';

const argv = process.argv.slice(2);
const args = {};
for (let i = 0; i < argv.length; i++) {
  if (argv[i].startsWith('--')) args[argv[i].slice(2)] = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : '1';
}
for (const k of args.mode ? ['url', 'out'] : ['url', 'photo', 'out']) {
  if (!args[k]) { console.error(`e2e: --${k} is required`); process.exit(2); }
}
fs.mkdirSync(args.out, { recursive: true });
const timeoutMs = 1000 * +(args.timeout || 1200);
const origin = new URL(args.url).origin;
const photo = args.photo ? fs.readFileSync(args.photo) : Buffer.from('no photo in this mode');
// A run of photo bytes past the file header: present in a request only if
// the photo (or a copy of its bytes) was sent.
const probe = photo.subarray(Math.min(64, photo.length >> 2), Math.min(64, photo.length >> 2) + Math.min(48, photo.length >> 1));

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'harmony-e2e-'));
const report = { requests: [], offOrigin: [], photoSent: false, console: [], error: null, outputs: {} };
const t0 = Date.now();
const browser = await chromium.launch({
  executablePath: args.chromium || '/usr/lib/chromium/chromium',
  headless: true,
  env: { ...process.env, HOME: scratch, TMPDIR: scratch },
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    '--disable-default-apps', '--disable-extensions', '--disable-breakpad',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1', '--proxy-server=127.0.0.1:9'],
});
let code = 0;
const maskProbes = []; // mask PNGs read back: no request may carry one
const bodies = [];     // [entry, body] of every intercepted request with a body

// maskPNG saves the page's mask, as the engine would get it, to DIR/name
// (null: no mask).
async function maskPNG(page, name) {
  const b64 = await page.evaluate(async () => {
    const b = await globalThis.harmonyMaskPNG();
    if (!b) return null;
    let s = '';
    for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
    return btoa(s);
  });
  if (b64 === null) return null;
  const buf = Buffer.from(b64, 'base64');
  maskProbes.push(buf.subarray(33)); // past the signature and IHDR
  const file = path.join(args.out, name);
  fs.writeFileSync(file, buf);
  return file;
}

// drag presses the primary button at a, moves to b in steps and releases
// it: pointerdown, pointermove…, pointerup on the overlay, as a hand would.
async function drag(page, a, b, steps = 12) {
  await page.mouse.move(a[0], a[1]);
  await page.mouse.down();
  await page.mouse.move(b[0], b[1], { steps });
  await page.mouse.up();
}

async function maskMode(page, pageError) {
  const m = report.mask = { strokes: [] };
  await page.selectOption('#base', 'elite');
  m.toolsShown = await page.isVisible('#mask-tools');
  await page.setInputFiles('#photo', args.photo);
  await page.waitForFunction(() => {
    const c = document.getElementById('mask-overlay'), img = document.getElementById('photo-preview');
    return img.naturalWidth > 0 && c.width === img.naturalWidth && c.height === img.naturalHeight && c.getBoundingClientRect().width > 0;
  }, null, { timeout: 60000 });
  m.overlayShown = await page.isVisible('#mask-overlay');
  const geo = await page.evaluate(() => {
    const c = document.getElementById('mask-overlay'), r = c.getBoundingClientRect();
    const ir = document.getElementById('photo-preview').getBoundingClientRect();
    return { w: c.width, h: c.height, rect: [r.left, r.top, r.width, r.height], img: [ir.left, ir.top, ir.width, ir.height] };
  });
  m.photo = [geo.w, geo.h];
  m.rect = geo.rect;
  m.imgRect = geo.img;
  const [L, T, W, H] = geo.rect;
  const scr = (fx, fy) => [L + fx * W, T + fy * H];
  const photoXY = (p) => [(p[0] - L) * geo.w / W, (p[1] - T) * geo.h / H];
  const stroke = async (tool, size, a, b) => {
    await page.check(tool === 'eraser' ? '#mask-eraser' : '#mask-brush');
    await page.locator('#mask-size').fill(String(size));
    await drag(page, a, b);
    // the radius in photo pixels the page paints with: half the size in
    // screen pixels, scaled to the photo
    m.strokes.push({ tool, radius: size / 2 * geo.w / W, a: photoXY(a), b: photoXY(b) });
  };
  await stroke('brush', 40, scr(0.15, 0.5), scr(0.85, 0.5));
  await stroke('eraser', 24, scr(0.5, 0.1), scr(0.5, 0.9));
  m.sizeLabel = await page.textContent('#mask-size-value');
  m.status = await page.textContent('#mask-status');
  m.painted = await maskPNG(page, 'mask-painted.png');
  // The overlay: translucent over painted pixels, clear elsewhere.
  m.overlayAlpha = await page.evaluate(([p, q]) => {
    const ctx = document.getElementById('mask-overlay').getContext('2d');
    const at = (x) => ctx.getImageData(Math.floor(x[0]), Math.floor(x[1]), 1, 1).data[3];
    return [at(p), at(q)];
  }, [photoXY(scr(0.3, 0.5)), photoXY(scr(0.3, 0.1))]);
  await page.screenshot({ path: path.join(args.out, 'mask-page.png'), fullPage: true });
  if (args['mask-file']) {
    const before = await page.getAttribute('#mask-status', 'data-count');
    await page.setInputFiles('#mask-file', args['mask-file']);
    await page.waitForFunction((n) => document.getElementById('mask-status').dataset.count !== n, before, { timeout: 30000 });
    m.loaded = await maskPNG(page, 'mask-loaded.png');
  }
  if (args.photo2) {
    await page.setInputFiles('#photo', args.photo2);
    await page.waitForFunction(() => document.getElementById('mask-overlay').width === document.getElementById('photo-preview').naturalWidth && document.getElementById('mask-status').dataset.count === '0', null, { timeout: 60000 });
    m.afterNewPhoto = await maskPNG(page, 'mask-new-photo.png');
    m.afterNewPhotoSize = await page.evaluate(() => [document.getElementById('mask-overlay').width, document.getElementById('mask-overlay').height]);
  }
  report.error = await pageError();
  if (report.error) code = 1;
}

try {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 1400 } });
  const page = await ctx.newPage();
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  const allowed = new Set([origin, ...(args.allow ? args.allow.split(',') : [])]);
  if (args.mode === 'hub') {
    page.on('request', (req) => {
      report.requests.push({ method: req.method(), url: req.url() });
      const u = new URL(req.url());
      if ((u.protocol === 'http:' || u.protocol === 'https:') && !allowed.has(u.origin)) report.offOrigin.push(req.url());
    });
  } else await ctx.route('**/*', async (route) => {
    const req = route.request();
    const body = req.postDataBuffer();
    const entry = { method: req.method(), url: req.url(), bodyBytes: body ? body.length : 0 };
    if (body && body.indexOf(probe) >= 0) { report.photoSent = true; entry.photo = true; }
    bodies.push([entry, body || Buffer.alloc(0)]);
    if (req.url().includes(probe.toString('base64').slice(0, 32))) { report.photoSent = true; entry.photo = true; }
    report.requests.push(entry);
    const u = new URL(req.url());
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.origin !== origin) {
      report.offOrigin.push(req.url());
      await route.abort('blockedbyclient');
      return;
    }
    await route.continue();
  });
  const ready = async () => {
    await page.waitForFunction(() => !document.getElementById('adapter').textContent.startsWith('Starting'), null, { timeout: 120000 });
  };
  // Lets any model load in flight (the demo loads by itself) finish: the
  // status reads "Loading…", then "x MB of y MB …" while one runs.
  const modelIdle = () => page.waitForFunction(() => {
    const s = document.getElementById('model-status').textContent;
    return s !== 'Loading…' && !(/ of /.test(s) && !s.startsWith('Loaded'));
  }, null, { timeout: 300000 });
  // A model load has ended: loaded, or an error shown.
  const loadSettled = () => page.waitForFunction(() => {
    const s = document.getElementById('model-status').textContent, e = document.getElementById('error');
    return s.startsWith('Loaded') || !e.hidden;
  }, null, { timeout: 300000 });
  // Presses "Load model" and returns the status line once the load ended.
  const clickLoad = async () => {
    await page.evaluate(() => { document.getElementById('model-status').textContent = ''; });
    await page.click('#load-model');
    await loadSettled();
    return page.textContent('#model-status');
  };
  // The page's error banner ({code, text}), or null when none shows.
  const pageError = () => page.evaluate(() => { const e = document.getElementById('error'); return e.hidden ? null : { code: e.dataset.code, text: e.textContent }; });
  // In hub mode the page opens allowing the Hub's origin (what it reloads
  // itself with when a remote model is chosen).
  let pageURL = args.mode === 'hub' ? args.url + '?model-origin=' + encodeURIComponent(new URL(args.hub).origin) : args.url;
  if (args.query) pageURL += (pageURL.includes('?') ? '&' : '?') + args.query;
  const fill = async (id, v) => { if (v !== undefined) await page.fill(id, String(v)); };
  await page.goto(pageURL, { waitUntil: 'load' });
  await ready();
  report.adapter = await page.textContent('#adapter');
  if (args.mode === 'folder') {
    // A local diffusers folder, picked with the folder input: read in
    // place through File.slice, never uploaded.
    await modelIdle();
    await page.selectOption('#model-source', 'folder');
    await page.selectOption('#precision', 'f32');
    await page.setInputFiles('#model-folder', args.folder);
    report.folder = await clickLoad();
    report.error = await pageError();
    if (report.error) code = 1;
    throw 'done';
  }
  if (args.mode === 'hub') {
    // A Hub repository URL: the file list from the tree API, the files by
    // single-range GETs through the Hub's redirect to its CDN.
    await modelIdle();
    await page.selectOption('#model-source', 'hf');
    await page.fill('#model-url', args.hub);
    await page.selectOption('#precision', 'f16');
    report.hub = await clickLoad();
    report.error = await pageError();
    if (report.error) code = 1;
    throw 'done';
  }
  if (args.mode === 'mask') {
    await maskMode(page, pageError);
    throw 'done';
  }
  if (args.mode === 'faults') {
    // Hostile photos (--bad FILE,FILE…: each must be refused with a visible
    // error, or accepted when it is within the limits), then a valid one
    // (--photo) and a small generation: the page must still work.
    const errorText = () => page.evaluate(() => { const e = document.getElementById('error'); return e.hidden ? null : e.textContent; });
    report.faults = { photos: [] };
    // Pack URLs that must fail (--hang: a server that never answers;
    // --corrupt: a shard that fails its hash): each load must end in an
    // error, and the demo must load afterwards. The Cache Storage keys
    // after the failure are reported.
    for (const [kind, url] of [['hang', args.hang], ['corrupt', args.corrupt]]) {
      if (!url) continue;
      await modelIdle();
      await page.selectOption('#model-source', 'pack');
      await page.fill('#model-url', new URL(url, args.url).href);
      await page.selectOption('#precision', 'f16');
      const t = Date.now();
      await page.evaluate(() => { document.getElementById('model-status').textContent = ''; });
      await page.click('#load-model');
      await loadSettled();
      const r = report.faults[kind] = { error: await errorText(), seconds: (Date.now() - t) / 1000 };
      r.cacheKeys = await page.evaluate(async () => {
        const c = await caches.open('harmony-models');
        return (await c.keys()).map((q) => q.url);
      });
      await page.selectOption('#model-source', 'demo');
      await page.evaluate(() => { document.getElementById('model-status').textContent = ''; });
      await page.click('#load-model');
      await loadSettled();
      r.after = await page.textContent('#model-status');
      r.afterError = await errorText();
    }
    if (args.resume) {
      // A reload while a pack downloads (--resume: a slow shard): the load
      // after it must take the finished pieces from Cache Storage.
      await modelIdle();
      const choose = async () => {
        await page.selectOption('#model-source', 'pack');
        await page.fill('#model-url', new URL(args.resume, args.url).href);
        await page.selectOption('#precision', 'f16');
      };
      await choose();
      await page.evaluate(() => { document.getElementById('model-status').textContent = ''; });
      await page.click('#load-model');
      await page.waitForFunction(() => / of .*shard/.test(document.getElementById('model-status').textContent), null, { timeout: 120000, polling: 50 });
      const r = report.faults.resume = { at: await page.textContent('#model-status') };
      await page.reload({ waitUntil: 'load' });
      await ready();
      await choose();
      const t = Date.now();
      await page.evaluate(() => { document.getElementById('model-status').textContent = ''; });
      await page.click('#load-model');
      await loadSettled();
      Object.assign(r, { after: await page.textContent('#model-status'), error: await errorText(), seconds: (Date.now() - t) / 1000 });
      throw 'done';
    }
    if (args['cancel-pack']) {
      // Cancel while a pack downloads (--cancel-pack: a slow server) and
      // while a generation steps: each must end in "Cancelled." with the
      // page ready, and a generation afterwards must equal one made before.
      await modelIdle();
      await fill('#steps', args.steps ?? 3);
      await fill('#seed', 42);
      await fill('#width', 48);
      await fill('#height', 32);
      await page.setChecked('#compare', false);
      await page.setInputFiles('#photo', args.photo);
      await page.waitForFunction(() => document.getElementById('photo-caption').textContent.includes('×'), null, { timeout: 60000 });
      const idle = () => page.waitForFunction(() => !document.getElementById('generate').disabled, null, { timeout: 120000 });
      const gen = async (name) => {
        await page.evaluate(() => { document.getElementById('results').textContent = ''; });
        const t = Date.now();
        await page.click('#generate');
        await page.waitForFunction(() => !document.getElementById('error').hidden || document.querySelector('#results img[data-kind="harmony"]'), null, { timeout: 600000, polling: 250 });
        const r = { error: await errorText(), seconds: (Date.now() - t) / 1000 };
        const b64 = await page.evaluate(async () => {
          const img = document.querySelector('#results img[data-kind="harmony"]');
          if (!img) return null;
          const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
          let s = '';
          for (let i = 0; i < buf.length; i += 8192) s += String.fromCharCode(...buf.subarray(i, i + 8192));
          return btoa(s);
        });
        if (b64) { r.png = path.join(args.out, `${name}.png`); fs.writeFileSync(r.png, Buffer.from(b64, 'base64')); }
        return r;
      };
      const cancelWhen = async (cond) => {
        const t = Date.now();
        await page.click('#generate');
        await page.waitForFunction(cond, null, { timeout: 300000, polling: 50 });
        const what = await page.textContent('#progress-text') + ' | ' + await page.textContent('#model-status');
        const tc = Date.now();
        await page.click('#cancel');
        await idle();
        return { at: what, startedSeconds: (tc - t) / 1000, seconds: (Date.now() - tc) / 1000, error: await errorText(),
          progress: await page.textContent('#progress-text'), model: await page.textContent('#model-status'),
          cancelDisabled: await page.evaluate(() => document.getElementById('cancel').disabled) };
      };
      const c = report.faults.cancel = {};
      await page.selectOption('#model-source', 'demo');
      c.reference = await gen('reference');
      await page.selectOption('#model-source', 'pack');
      await page.fill('#model-url', new URL(args['cancel-pack'], args.url).href);
      await page.selectOption('#precision', 'f16');
      c.download = await cancelWhen(() => / of .*shard/.test(document.getElementById('model-status').textContent));
      await page.selectOption('#model-source', 'demo');
      c.step = await cancelWhen(() => /[1-9]\d*\/\d+/.test(document.getElementById('progress-text').textContent));
      c.after = await gen('after');
      throw 'done';
    }
    if (!args.photo) throw 'done';
    for (const file of (args.bad ? args.bad.split(',') : [])) {
      await page.evaluate(() => { const e = document.getElementById('error'); e.hidden = true; e.textContent = ''; document.getElementById('photo-caption').textContent = ''; });
      const t = Date.now();
      await page.setInputFiles('#photo', file);
      await page.waitForFunction(() => !document.getElementById('error').hidden || document.getElementById('photo-caption').textContent.includes('×'), null, { timeout: 120000 });
      report.faults.photos.push({ file: path.basename(file), error: await errorText(), caption: await page.textContent('#photo-caption'), seconds: (Date.now() - t) / 1000 });
    }
    await modelIdle();
    await fill('#steps', 1);
    await fill('#width', 48);
    await fill('#height', 32);
    await page.setChecked('#compare', false);
    await page.setInputFiles('#photo', args.photo);
    await page.waitForFunction(() => document.getElementById('photo-caption').textContent.includes('×'), null, { timeout: 60000 });
    const t = Date.now();
    await page.click('#generate');
    await page.waitForFunction(() => !document.getElementById('error').hidden || document.querySelector('#results img[data-kind="harmony"]'), null, { timeout: 600000, polling: 500 });
    report.faults.generate = { error: await errorText(), kinds: await page.evaluate(() => [...document.querySelectorAll('#results img[data-kind]')].map((i) => i.dataset.kind)), seconds: (Date.now() - t) / 1000 };
    throw 'done';
  }
  if (args.mode === 'cache') {
    // A hosted pack (here the demo pack by URL) is kept in Cache Storage:
    // the second load reads it from there; after "clear", from the network.
    const loaded = async () => {
      await modelIdle();
      return clickLoad();
    };
    const choose = async () => {
      await page.selectOption('#model-source', 'pack');
      await page.fill('#model-url', new URL('models/tiny/', args.url).href);
      await page.selectOption('#precision', 'f16');
    };
    await choose();
    report.cache = { first: await loaded() };
    await page.reload({ waitUntil: 'load' });
    await ready();
    await choose();
    report.cache.second = await loaded();
    await page.click('#clear-cache');
    await page.waitForFunction(() => document.getElementById('model-status').textContent.startsWith('Cleared'), null, { timeout: 60000 });
    report.cache.cleared = await page.textContent('#model-status');
    report.cache.third = await loaded();
    report.error = await pageError();
    if (report.error) code = 1;
    throw 'done';
  }
  if (args.base) await page.selectOption('#base', args.base);
  await page.selectOption('#model-source', args.source || 'demo');
  if (args['model-url']) await page.fill('#model-url', args['model-url']);
  if (args.precision) await page.selectOption('#precision', args.precision);
  if (args.placeholder) await page.fill('#placeholder', args.placeholder);
  if (args['local-weight']) await page.fill('#local-weight', args['local-weight']);
  await fill('#class', args.class ?? 'dog');
  await fill('#prompt', args.prompt ?? 'swimming underwater');
  if (args.negative !== undefined) await fill('#negative', args.negative);
  await fill('#steps', args.steps ?? 8);
  await fill('#guidance', args.guidance ?? 7.5);
  await fill('#seed', args.seed ?? 42);
  await fill('#width', args.width ?? 48);
  await fill('#height', args.height ?? 32);
  await page.click('#advanced summary'); // the knobs live in the advanced panel
  await fill('#preview-every', args['preview-every'] ?? 0);
  await page.setChecked('#harmony', (args.harmony ?? '1') === '1');
  await page.setChecked('#compare', (args.compare ?? '1') === '1');
  await page.setInputFiles('#photo', args.photo);
  await page.waitForSelector('#photo-figure:not([hidden])');
  if (args['paint-mask'] === '1') {
    // A brush stroke across the photo's middle, then the mask as the
    // engine will get it (kept to compare against).
    await page.waitForFunction(() => document.getElementById('mask-overlay').width === document.getElementById('photo-preview').naturalWidth, null, { timeout: 60000 });
    const r = await page.evaluate(() => { const b = document.getElementById('mask-overlay').getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; });
    await page.locator('#mask-size').fill('120');
    await drag(page, [r[0] + 0.3 * r[2], r[1] + 0.5 * r[3]], [r[0] + 0.7 * r[2], r[1] + 0.5 * r[3]]);
    report.maskFile = await maskPNG(page, 'mask-sent.png');
    report.maskStatus = await page.textContent('#mask-status');
  }
  if (args['clip-url'] || args['dino-url']) {
    await modelIdle();
    await page.click('#scorers summary');
    await fill('#clip-url', args['clip-url'] || '');
    await fill('#dino-url', args['dino-url'] || '');
    await page.click('#load-scorers');
    await page.waitForFunction(() => /^(Scoring|Scores off)/.test(document.getElementById('scorer-status').textContent), null, { timeout: 300000 });
    report.scorerStatus = await page.textContent('#scorer-status');
    report.error = await pageError();
    if (report.error) throw 'done';
  }
  const tGen = Date.now();
  await page.click('#generate');
  await page.waitForFunction(() => {
    const err = document.getElementById('error');
    return !err.hidden || document.querySelector('#results img[data-kind="harmony"]') || document.querySelector('#results img[data-kind="baseline"]');
  }, null, { timeout: timeoutMs, polling: 500 });
  report.generateSeconds = (Date.now() - tGen) / 1000;
  report.error = await pageError();
  report.progressText = await page.textContent('#progress-text');
  report.modelStatus = await page.textContent('#model-status');
  if (report.scorerStatus) {
    report.scoreLine = await page.evaluate(() => { const e = document.getElementById('scores'); return e.hidden ? null : e.textContent; });
    report.scores = await page.evaluate(() => globalThis.harmonyLastScores || null);
  }
  const images = await page.evaluate(async () => {
    const out = {};
    for (const img of document.querySelectorAll('#results img[data-kind]')) {
      const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
      let s = '';
      for (let i = 0; i < buf.length; i += 8192) s += String.fromCharCode(...buf.subarray(i, i + 8192));
      out[img.dataset.kind] = btoa(s);
    }
    return out;
  });
  for (const [kind, b64] of Object.entries(images)) {
    const file = path.join(args.out, `${kind}.png`);
    fs.writeFileSync(file, Buffer.from(b64, 'base64'));
    report.outputs[kind] = file;
  }
  await page.screenshot({ path: path.join(args.out, 'page.png'), fullPage: true });
  if (report.error) code = 1;
} catch (e) {
  if (e !== 'done') {
    report.error = report.error || { code: 'driver', text: String(e && e.stack || e) };
    code = 1;
  }
} finally {
  report.totalSeconds = (Date.now() - t0) / 1000;
  fs.writeFileSync(path.join(args.out, 'report.json'), JSON.stringify(report, null, 2));
  await browser.close().catch(() => {});
  fs.rmSync(scratch, { recursive: true, force: true });
}
// No request may carry a mask the page made.
for (const [entry, body] of bodies) {
  if (maskProbes.some((p) => p.length > 0 && (body.indexOf(p) >= 0 || entry.url.includes(p.toString('base64').slice(0, 32))))) { report.maskSent = true; entry.mask = true; }
}
report.maskSent = !!report.maskSent;
fs.writeFileSync(path.join(args.out, 'report.json'), JSON.stringify(report, null, 2));
if (report.offOrigin.length || report.photoSent || report.maskSent) code = 1;
console.log(JSON.stringify({ error: report.error, offOrigin: report.offOrigin, photoSent: report.photoSent, maskSent: report.maskSent, mask: report.mask, generateSeconds: report.generateSeconds, outputs: Object.keys(report.outputs), scoreLine: report.scoreLine, cache: report.cache, folder: report.folder, hub: report.hub, faults: report.faults }));
process.exit(code);
