// mask.js: the subject-mask editor of the page (ELITE's object mask). The
// mask is a bitmap at the photo's own size (one byte a pixel, 1 = subject),
// painted with a round brush or eraser through pointer events on a canvas
// laid over the photo, or read from a PNG file with ELITE's rule (any
// channel > 0 is subject). It is drawn translucent over the photo and
// handed to the engine as an 8-bit grayscale PNG (0 or 255) of the photo's
// size, made here; like the photo it never goes into a request.

// Overlay colour of subject pixels (premultiplied by the canvas).
const OVERLAY = [255, 0, 96, 110];

export class MaskEditor {
  // canvas: the overlay, placed over img by CSS; onChange(count) after
  // every edit.
  constructor(img, canvas, onChange) {
    this.img = img;
    this.canvas = canvas;
    this.onChange = onChange || (() => {});
    this.tool = 'brush';
    this.size = 24; // brush diameter in screen pixels
    this.width = 0;
    this.height = 0;
    this.bits = null;
    this.last = null; // last painted point (photo pixels) of the stroke
    this.pointer = null;
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerup', (e) => this.up(e));
    canvas.addEventListener('pointercancel', (e) => this.up(e));
  }

  // reset starts an empty mask for a photo of w×h pixels (0×0: none).
  reset(w, h) {
    this.width = w;
    this.height = h;
    this.bits = w > 0 && h > 0 ? new Uint8Array(w * h) : null;
    this.last = null;
    this.pointer = null;
    this.canvas.width = Math.max(w, 1);
    this.canvas.height = Math.max(h, 1);
    this.redraw();
    this.onChange(0);
  }

  clear() { this.reset(this.width, this.height); }

  count() {
    if (!this.bits) return 0;
    let n = 0;
    for (let i = 0; i < this.bits.length; i++) n += this.bits[i];
    return n;
  }

  // scale is photo pixels per screen pixel of the displayed overlay.
  scale() {
    const r = this.canvas.getBoundingClientRect();
    return r.width > 0 ? this.width / r.width : 1;
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * this.width / r.width, (e.clientY - r.top) * this.height / r.height];
  }

  down(e) {
    if (!this.bits || e.button !== 0) return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.pointer = e.pointerId;
    const p = this.point(e);
    this.last = p;
    this.stroke(p, p);
  }

  move(e) {
    if (this.pointer !== e.pointerId || !this.last) return;
    e.preventDefault();
    const p = this.point(e);
    this.stroke(this.last, p);
    this.last = p;
  }

  up(e) {
    if (this.pointer !== e.pointerId) return;
    this.pointer = null;
    this.last = null;
    this.onChange(this.count());
  }

  // stroke sets (brush) or clears (eraser) every pixel whose centre lies
  // within the brush radius of the segment a–b, in photo pixels.
  stroke(a, b) {
    const r = Math.max(0.5, this.size * this.scale() / 2);
    const v = this.tool === 'eraser' ? 0 : 1;
    const x0 = Math.max(0, Math.floor(Math.min(a[0], b[0]) - r)), x1 = Math.min(this.width - 1, Math.ceil(Math.max(a[0], b[0]) + r));
    const y0 = Math.max(0, Math.floor(Math.min(a[1], b[1]) - r)), y1 = Math.min(this.height - 1, Math.ceil(Math.max(a[1], b[1]) + r));
    const dx = b[0] - a[0], dy = b[1] - a[1], len2 = dx * dx + dy * dy;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const px = x + 0.5, py = y + 0.5;
        const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - a[0]) * dx + (py - a[1]) * dy) / len2)) : 0;
        const ex = px - (a[0] + t * dx), ey = py - (a[1] + t * dy);
        if (ex * ex + ey * ey <= r * r) this.bits[y * this.width + x] = v;
      }
    }
    this.redraw(x0, y0, x1, y1);
  }

  // redraw paints the overlay over the given box (all of it by default).
  redraw(x0 = 0, y0 = 0, x1 = this.width - 1, y1 = this.height - 1) {
    const ctx = this.canvas.getContext('2d');
    if (!this.bits) { ctx.clearRect(0, 0, this.canvas.width, this.canvas.height); return; }
    if (x1 < x0 || y1 < y0) return;
    const w = x1 - x0 + 1, h = y1 - y0 + 1;
    const im = ctx.createImageData(w, h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (!this.bits[(y0 + y) * this.width + x0 + x]) continue;
        im.data.set(OVERLAY, (y * w + x) * 4);
      }
    }
    ctx.putImageData(im, x0, y0);
  }

  // load reads a mask picture (resized to the photo's size, nearest): any
  // colour channel > 0 is subject, as ELITE reads its masks.
  async load(file) {
    if (!this.bits) throw Object.assign(new Error('choose a photo before its mask'), { code: 'bad-photo' });
    let bmp;
    try {
      bmp = await createImageBitmap(file, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    } catch {
      throw Object.assign(new Error(`${file.name} is not a picture this browser can read`), { code: 'bad-photo' });
    }
    const c = document.createElement('canvas');
    c.width = this.width;
    c.height = this.height;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bmp, 0, 0, this.width, this.height);
    bmp.close();
    const d = ctx.getImageData(0, 0, this.width, this.height).data;
    for (let i = 0; i < this.bits.length; i++) this.bits[i] = d[4 * i] | d[4 * i + 1] | d[4 * i + 2] ? 1 : 0;
    this.redraw();
    this.onChange(this.count());
  }

  // png returns the mask as an 8-bit grayscale PNG (255 subject, 0 not),
  // or null when nothing is painted (the whole photo is then the subject).
  async png() {
    if (!this.bits || this.count() === 0) return null;
    const w = this.width, h = this.height;
    const raw = new Uint8Array((w + 1) * h); // filter byte 0 before each row
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = this.bits[y * w + x] ? 255 : 0;
    }
    const z = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
    const ihdr = new Uint8Array(13);
    const dv = new DataView(ihdr.buffer);
    dv.setUint32(0, w);
    dv.setUint32(4, h);
    ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit grayscale, no interlace
    return concat([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', new Uint8Array(0))]);
  }
}

let crcTable = null;

function crc32(bytes) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
