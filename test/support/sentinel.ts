/**
 * A sentinel folder outside every root (issue 15: "nothing outside the root"):
 * files, a folder, a symlink and a file named like the ones a hostile client
 * plants on the server. Tests point symlinks at it from inside a root, play
 * their attack, then check that nothing in it changed (every entry's kind,
 * size, mode, mtime, ctime, inode, content and link target) and that none of
 * its contents reached a root (its files carry a unique marker text).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Sentinel {
  /** The folder (absolute). */
  dir: string;
  /** A text that every sentinel file contains; finding it in a root means a leak. */
  marker: string;
  /** The digest taken when it was made. */
  before: string;
  /** Names of the files in it, relative (for tests that plant the same names elsewhere). */
  files: string[];
}

/** Makes the sentinel folder and takes its digest. */
export function makeSentinel(prefix = 'lipsync-sentinel-'): Sentinel {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const marker = `SENTINEL-${randomBytes(8).toString('hex')}`;
  const files = ['id_decoy', 'notes.txt', 'sub/deep.txt', 'victim'];
  for (const f of files) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), `${marker} ${f}\n`);
  }
  symlinkSync('notes.txt', join(dir, 'link-to-notes'));
  files.push('link-to-notes');
  return { dir, marker, before: sentinelDigest(dir), files };
}

/** Every entry below `dir`: path, kind, size, mode, mtime and ctime (ns), inode, content hash, link target. */
export function sentinelDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (rel: string): void => {
    const names = readdirSync(join(dir, rel)).sort();
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const abs = join(dir, p);
      const st = lstatSync(abs, { bigint: true });
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      h.update(`${p}\0${kind}\0${st.size}\0${st.mode}\0${st.mtimeNs}\0${st.ctimeNs}\0${st.ino}\0`);
      if (kind === 'f') h.update(createHash('sha256').update(readFileSync(abs)).digest('hex'));
      if (kind === 'l') h.update(readlinkSync(abs));
      h.update('\n');
      if (kind === 'd') walk(p);
    }
  };
  walk('');
  return h.digest('hex');
}

/** Whether the sentinel is exactly as it was made. */
export function sentinelIntact(s: Sentinel): boolean {
  return sentinelDigest(s.dir) === s.before;
}

/** Paths below `root` (any depth, .lipsync included) whose file content holds the sentinel's marker. */
export function sentinelLeaks(s: Sentinel, root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(join(root, rel));
    } catch {
      return;
    }
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, p));
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size < 1 << 20 && readFileSync(join(root, p), 'utf8').includes(s.marker)) out.push(p);
    }
  };
  walk('');
  return out.sort();
}
