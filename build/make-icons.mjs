#!/usr/bin/env node
// Draws the tray icons and the app icon as PNGs (no image tools needed): shapes are
// rasterised with 4×4 supersampling and written with a tiny PNG encoder (zlib).
//
//   build/tray/tray-<state>-light.png  (+ @2x)  dark glyph, for light panels
//   build/tray/tray-<state>-dark.png   (+ @2x)  light glyph, for dark panels
//   build/tray/tray-<state>Template.png (+ @2x) macOS template image (black + alpha)
//   build/icon.png                              512 px app icon (electron-builder makes .icns/.ico from it)
//
// States: the TRAY_STATES of electron/main/logic/tray.ts. Run: node build/make-icons.mjs
import { deflateSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
export const STATES = ['up-to-date', 'syncing', 'paused', 'offline', 'error', 'attention'];

// ---------------------------------------------------------------- PNG encoder

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** RGBA (straight alpha, 8 bit) → PNG bytes. */
export function encodePng(width, height, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0; // filter: none
    rgba.copy(raw, y * (width * 4 + 1) + 1, y * width * 4, (y + 1) * width * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---------------------------------------------------------------- shapes (unit square, y down)

const segDist = (px, py, x1, y1, x2, y2) => {
  const dx = x2 - x1;
  const dy = y2 - y1;
  const t = Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / (dx * dx + dy * dy || 1)));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
};
const disc = (cx, cy, r) => (x, y) => Math.hypot(x - cx, y - cy) <= r;
const ring = (cx, cy, r, w) => (x, y) => Math.abs(Math.hypot(x - cx, y - cy) - r) <= w / 2;
const line = (x1, y1, x2, y2, w) => (x, y) => segDist(x, y, x1, y1, x2, y2) <= w / 2;
const rect = (x0, y0, x1, y1) => (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
const arc = (cx, cy, r, w, a0, a1) => (x, y) => {
  if (Math.abs(Math.hypot(x - cx, y - cy) - r) > w / 2) return false;
  let a = (Math.atan2(y - cy, x - cx) * 180) / Math.PI;
  if (a < 0) a += 360;
  return a0 <= a1 ? a >= a0 && a <= a1 : a >= a0 || a <= a1;
};
const tri = (ax, ay, bx, by, cx, cy) => (x, y) => {
  const s = (px, py, qx, qy) => (x - qx) * (py - qy) - (px - qx) * (y - qy);
  const d1 = s(ax, ay, bx, by);
  const d2 = s(bx, by, cx, cy);
  const d3 = s(cx, cy, ax, ay);
  return !((d1 < 0 || d2 < 0 || d3 < 0) && (d1 > 0 || d2 > 0 || d3 > 0));
};
const any =
  (...fs) =>
  (x, y) =>
    fs.some((f) => f(x, y));

/** Paint layers `[shape, [r,g,b,a]]` (a ∈ 0..1; a = 0 with erase: true cuts) onto size×size. */
function render(size, layers, ss = 4) {
  const out = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      // premultiplied accumulation over the samples
      let R = 0;
      let G = 0;
      let B = 0;
      let A = 0;
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const x = (px + (sx + 0.5) / ss) / size;
          const y = (py + (sy + 0.5) / ss) / size;
          let r = 0;
          let g = 0;
          let b = 0;
          let a = 0;
          for (const [shape, [cr, cg, cb, ca], erase] of layers) {
            if (!shape(x, y)) continue;
            if (erase) {
              r = g = b = a = 0;
              continue;
            }
            r = cr * ca + r * (1 - ca);
            g = cg * ca + g * (1 - ca);
            b = cb * ca + b * (1 - ca);
            a = ca + a * (1 - ca);
          }
          R += r;
          G += g;
          B += b;
          A += a;
        }
      }
      const n = ss * ss;
      const a = A / n;
      const i = (py * size + px) * 4;
      out[i] = a ? Math.round(R / n / a) : 0;
      out[i + 1] = a ? Math.round(G / n / a) : 0;
      out[i + 2] = a ? Math.round(B / n / a) : 0;
      out[i + 3] = Math.round(a * 255);
    }
  }
  return out;
}

// ---------------------------------------------------------------- the icons

const hex = (h, a = 1) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16), a];
const STATE_COLOR = {
  'up-to-date': null,
  syncing: '#1a73e8',
  paused: null,
  offline: '#8a8a8a',
  error: '#d93025',
  attention: '#f29900',
};

const W = 0.13; // stroke width (2 px at 16 px)

/** The base mark: two arrows chasing round a circle (the "sync" sign). */
const syncMark = () =>
  any(
    arc(0.5, 0.5, 0.33, W, 200, 340),
    arc(0.5, 0.5, 0.33, W, 20, 160),
    tri(0.74, 0.24, 0.94, 0.36, 0.73, 0.47),
    tri(0.26, 0.76, 0.06, 0.64, 0.27, 0.53),
  );

/** The glyph of each state (in the unit square). Badge states get a filled dot bottom right. */
function glyphLayers(state, ink, badgeInk) {
  const color = STATE_COLOR[state];
  const badge = color && badgeInk ? hex(color) : ink;
  switch (state) {
    case 'up-to-date':
      return [
        [ring(0.5, 0.5, 0.38, W), ink],
        [any(line(0.31, 0.52, 0.45, 0.66, W), line(0.45, 0.66, 0.71, 0.37, W)), ink],
      ];
    case 'syncing':
      return [[syncMark(), badge]];
    case 'paused':
      return [
        [ring(0.5, 0.5, 0.38, W), ink],
        [any(rect(0.37, 0.32, 0.46, 0.68), rect(0.54, 0.32, 0.63, 0.68)), ink],
      ];
    case 'offline':
      return [
        [ring(0.5, 0.5, 0.38, W), badgeInk ? hex(color) : ink],
        [line(0.16, 0.84, 0.84, 0.16, W + 0.1), [0, 0, 0, 0], true],
        [line(0.2, 0.8, 0.8, 0.2, W), ink],
      ];
    case 'error':
      return [
        [disc(0.5, 0.5, 0.44), badge],
        [any(line(0.34, 0.34, 0.66, 0.66, W), line(0.66, 0.34, 0.34, 0.66, W)), [0, 0, 0, 0], true],
      ];
    case 'attention':
      return [
        [tri(0.5, 0.05, 0.97, 0.92, 0.03, 0.92), badge],
        [any(rect(0.445, 0.33, 0.555, 0.64), disc(0.5, 0.77, 0.065)), [0, 0, 0, 0], true],
      ];
    default:
      throw new Error(`unknown state ${state}`);
  }
}

const VARIANTS = {
  light: { ink: hex('#202124'), color: true, file: (s) => `tray-${s}-light` },
  dark: { ink: hex('#f1f3f4'), color: true, file: (s) => `tray-${s}-dark` },
  template: { ink: hex('#000000'), color: false, file: (s) => `tray-${s}Template` },
};

export function trayIconRgba(state, variant, size) {
  const v = VARIANTS[variant];
  return render(size, glyphLayers(state, v.ink, v.color));
}

export function trayIcon(state, variant, size) {
  return encodePng(size, size, trayIconRgba(state, variant, size));
}

export function appIcon(size = 512) {
  const r = 0.2; // corner radius of the rounded square
  const rounded = (x, y) => {
    const cx = Math.min(Math.max(x, 0.06 + r), 0.94 - r);
    const cy = Math.min(Math.max(y, 0.06 + r), 0.94 - r);
    return Math.hypot(x - cx, y - cy) <= r;
  };
  const white = hex('#ffffff');
  const shrink = (f) => (x, y) => f(0.5 + (x - 0.5) / 0.62, 0.5 + (y - 0.5) / 0.62);
  return encodePng(
    size,
    size,
    render(
      size,
      [
        [rounded, hex('#1a73e8')],
        [(x, y) => rounded(x, y) && y > 0.5, hex('#1765cc')],
        [shrink(syncMark()), white],
      ],
      2,
    ),
  );
}

function main() {
  const dir = join(here, 'tray');
  mkdirSync(dir, { recursive: true });
  for (const state of STATES) {
    for (const variant of Object.keys(VARIANTS)) {
      const base = VARIANTS[variant].file(state);
      writeFileSync(join(dir, `${base}.png`), trayIcon(state, variant, 16));
      writeFileSync(join(dir, `${base}@2x.png`), trayIcon(state, variant, 32));
    }
  }
  writeFileSync(join(here, 'icon.png'), appIcon(512));
  console.log(`wrote ${STATES.length * 3 * 2} tray icons to ${dir} and ${join(here, 'icon.png')}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
