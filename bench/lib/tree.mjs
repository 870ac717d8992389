// Deterministic synthetic trees: N files of 1–4 KB, 100 per directory, 100 directories
// per top-level directory; cached under bench/cache/ and reused when the manifest matches.
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const TREE_VERSION = 1;
export const PER_DIR = 100;

export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** A 4 MiB pool of seeded random bytes; file contents are slices of it. */
export function pool(seed) {
  const rnd = prng(seed ^ 0x9e3779b9);
  const buf = Buffer.alloc(4 << 20);
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE(Math.floor(rnd() * 4294967296), i);
  return buf;
}
export function relPath(i) {
  const top = Math.floor(i / (PER_DIR * 100));
  const dir = Math.floor(i / PER_DIR) % 100;
  return `t${String(top).padStart(3, '0')}/d${String(dir).padStart(2, '0')}/f${String(i % PER_DIR).padStart(2, '0')}.dat`;
}
/** Writes `count` files named f00000.dat… into dir, sizes 1–4 KB from rnd. Returns bytes. */
export function writeFlat(dir, count, seed) {
  const rnd = prng(seed),
    p = pool(seed);
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const size = 1024 + Math.floor(rnd() * 3073);
    const off = Math.floor(rnd() * (p.length - size));
    writeFileSync(join(dir, `f${String(i).padStart(5, '0')}.dat`), p.subarray(off, off + size));
    bytes += size;
  }
  return bytes;
}

export function ensureTree(cacheRoot, files, seed, log) {
  const dir = join(cacheRoot, `tree-${files}-seed${seed}`);
  const manifestFile = join(dir, 'manifest.json');
  const want = { version: TREE_VERSION, files, seed, perDir: PER_DIR };
  if (existsSync(manifestFile)) {
    const m = JSON.parse(readFileSync(manifestFile, 'utf8'));
    if (m.version === want.version && m.files === files && m.seed === seed && m.perDir === PER_DIR && m.complete) {
      log(`tree: reusing ${dir} (${files} files, ${(m.bytes / 1e6).toFixed(1)} MB)`);
      return { dir: join(dir, 'files'), ...m };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const tmp = join(dir, 'files.tmp');
  mkdirSync(tmp, { recursive: true });
  const t0 = Date.now();
  const rnd = prng(seed),
    p = pool(seed);
  let bytes = 0;
  // Fixed mtime so that every copy of the tree is identical, metadata included.
  for (let i = 0; i < files; i++) {
    const rel = relPath(i);
    if (i % PER_DIR === 0) mkdirSync(join(tmp, rel, '..'), { recursive: true });
    const size = 1024 + Math.floor(rnd() * 3073);
    const off = Math.floor(rnd() * (p.length - size));
    writeFileSync(join(tmp, rel), p.subarray(off, off + size));
    bytes += size;
    if (i % 100000 === 99999) log(`tree: ${i + 1}/${files} files`);
  }
  renameSync(tmp, join(dir, 'files'));
  const m = { ...want, bytes, dirs: Math.ceil(files / PER_DIR), complete: true, builtMs: Date.now() - t0 };
  writeFileSync(manifestFile, JSON.stringify(m, null, 2));
  log(`tree: built ${files} files (${(bytes / 1e6).toFixed(1)} MB) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { dir: join(dir, 'files'), ...m };
}
