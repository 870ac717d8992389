/**
 * Compares the local tree with the state database, one directory at a time.
 *
 * Memory: only one directory's listing (its disk names and its DB children) is held at
 * a time, plus the stack of directories still to visit; never the whole tree.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Entry, Excluder, LocalStat } from './types.js';
import type { StateDb } from './state/db.js';

export type ScanChange =
  | { type: 'added'; path: string; stat: LocalStat }
  | { type: 'modified'; path: string; stat: LocalStat; entry: Entry }
  | { type: 'deleted'; path: string; entry: Entry };

export type ScanSkipped = { path: string; reason: string };

/**
 * How close (in ns) a file's mtime may be to the moment its entry was recorded before a
 * same-looking stat is no longer trusted: a write landing within the file system's
 * timestamp granularity after the sync would leave size and mtime unchanged.
 */
export const RACY_WINDOW_NS = 2_000_000_000n;

/** How many lstat/hash calls of one directory run at once. */
const STAT_CONCURRENCY = 32;

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function isGone(err: unknown): boolean {
  const code = errCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function describe(err: unknown): string {
  const code = errCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  return code && !msg.startsWith(code) ? `${code}: ${msg}` : msg;
}

function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function nameOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * Orders strings by Unicode code point, which is the UTF-8 byte order SQLite uses
 * (plain `<` compares UTF-16 units, which differs for astral vs U+E000..U+FFFF).
 */
function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** lstat reduced to what sync needs; null if the path is gone or is not a file, dir or symlink. */
export async function lstatLocal(absPath: string): Promise<LocalStat | null> {
  let st;
  try {
    st = await fsp.lstat(absPath, { bigint: true });
  } catch (err) {
    if (isGone(err)) return null;
    throw err;
  }
  const mode = Number(st.mode & 0o7777n);
  const base = { mtimeNs: st.mtimeNs, mode, ino: st.ino };
  if (st.isFile()) return { kind: 'file', size: Number(st.size), target: null, ...base };
  if (st.isDirectory()) return { kind: 'dir', size: 0, target: null, ...base };
  if (st.isSymbolicLink()) {
    let target: string;
    try {
      target = await fsp.readlink(absPath);
    } catch (err) {
      // Replaced by something else between lstat and readlink.
      if (isGone(err) || errCode(err) === 'EINVAL') return null;
      throw err;
    }
    return { kind: 'symlink', size: Buffer.byteLength(target), target, ...base };
  }
  return null; // fifo, socket, device
}

/** Whether the local stat still matches what was recorded (no content check). */
export function sameAsEntry(stat: LocalStat, entry: Entry): boolean {
  if (stat.kind !== entry.kind) return false;
  switch (stat.kind) {
    case 'file':
      return stat.size === entry.size && stat.mtimeNs === entry.mtimeNs && stat.mode === entry.mode;
    case 'symlink':
      return stat.target === entry.target;
    case 'dir':
      return stat.mode === entry.mode;
  }
}

/**
 * Racily clean (as git calls it): a file whose mtime is not clearly before the moment its
 * entry was recorded (less than RACY_WINDOW_NS before it, or any time after it) may have
 * been written again without its size or mtime changing, so its content must be hashed.
 */
export function isRacy(stat: LocalStat, syncedAtNs: bigint): boolean {
  return stat.kind === 'file' && stat.mtimeNs > syncedAtNs - RACY_WINDOW_NS;
}

const HASH_CHUNK = 256 * 1024;

/** sha256 of a file's content, hex, streamed in fixed-size chunks. */
export async function hashFile(absPath: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await fsp.open(absPath, 'r');
  try {
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, HASH_CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** Whether readdir told the type (d_type); if not, the caller has to lstat to know. */
function typeKnown(d: Dirent): boolean {
  return (
    d.isFile() ||
    d.isDirectory() ||
    d.isSymbolicLink() ||
    d.isFIFO() ||
    d.isSocket() ||
    d.isCharacterDevice() ||
    d.isBlockDevice()
  );
}

export interface CompareDirResult {
  changes: ScanChange[];
  subdirs: string[];
  skipped: ScanSkipped[];
}

/**
 * Compares one directory's direct children on disk with its children in the database.
 * `subdirs` lists the child directories that exist locally and are not excluded.
 * Excluded names are not reported at all (not even as deleted when they are in the DB).
 * Results are in path (UTF-8 byte) order.
 *
 * If `dir` vanished (or is no longer a directory: a symlink to one is not followed), all its
 * (non-excluded) DB children are reported deleted; if it cannot be read, it is reported in
 * `skipped` and nothing is deleted. The root itself vanishing throws instead: an unmounted
 * or removed sync folder must never read as "delete everything".
 */
export async function compareDir(
  root: string,
  db: StateDb,
  dir: string,
  excluder: Excluder,
): Promise<CompareDirResult> {
  const changes: ScanChange[] = [];
  const subdirs: string[] = [];
  const skipped: ScanSkipped[] = [];
  const absDir = dir === '' ? root : path.join(root, dir);

  const reportDeleted = (entries: Iterable<Entry>): void => {
    for (const entry of entries) {
      if (!excluder.ignores(entry.path, entry.kind === 'dir'))
        changes.push({ type: 'deleted', path: entry.path, entry });
    }
  };
  const result = (): CompareDirResult => {
    changes.sort((a, b) => comparePaths(a.path, b.path));
    subdirs.sort(comparePaths);
    skipped.sort((a, b) => comparePaths(a.path, b.path));
    return { changes, subdirs, skipped };
  };

  if (dir !== '') {
    // opendir follows symlinks: a directory replaced by a symlink (to a directory) must not
    // be read through it. It no longer holds what the DB recorded below it.
    let st;
    try {
      st = await fsp.lstat(absDir);
    } catch (err) {
      if (!isGone(err)) {
        skipped.push({ path: dir, reason: describe(err) });
        return result();
      }
    }
    if (!st?.isDirectory()) {
      reportDeleted(db.children(dir));
      return result();
    }
  }

  let handle;
  try {
    // Names as raw bytes: a name that is not UTF-8 must be detected, not silently mangled.
    handle = await fsp.opendir(absDir, { encoding: 'buffer' as BufferEncoding, bufferSize: 128 });
  } catch (err) {
    if (isGone(err)) {
      if (dir === '') throw err;
      reportDeleted(db.children(dir));
    } else {
      skipped.push({ path: dir, reason: describe(err) });
    }
    return result();
  }

  // One directory's DB children may be held; names not seen on disk are left at the end.
  const known = new Map<string, Entry>();
  for (const e of db.children(dir)) known.set(nameOf(e.path), e);

  const visit = async (dirent: Dirent): Promise<void> => {
    const nameBuf = dirent.name as unknown as Buffer;
    const name = nameBuf.toString('utf8');
    const rel = joinRel(dir, name);
    if (!Buffer.from(name, 'utf8').equals(nameBuf)) {
      skipped.push({ path: rel, reason: 'name is not valid UTF-8' });
      return;
    }
    const entry = known.get(name);
    known.delete(name);
    try {
      await compareChild(dirent, name, rel, entry);
    } catch (err) {
      // This child could not be examined: report it, and never as deleted.
      skipped.push({ path: rel, reason: describe(err) });
    }
  };

  const compareChild = async (dirent: Dirent, name: string, rel: string, entry: Entry | undefined): Promise<void> => {
    const abs = path.join(absDir, name);

    let stat: LocalStat | null | undefined;
    let isDir = dirent.isDirectory();
    if (!typeKnown(dirent)) {
      stat = await lstatLocal(abs);
      isDir = stat?.kind === 'dir';
    }
    if (excluder.ignores(rel, isDir)) return;
    if (stat === undefined) {
      stat = await lstatLocal(abs);
      // Replaced by another kind since readdir: decide the exclusion on what is there now.
      if (stat && (stat.kind === 'dir') !== isDir && excluder.ignores(rel, stat.kind === 'dir')) return;
    }
    if (stat === null) {
      if (dirent.isFIFO() || dirent.isSocket() || dirent.isCharacterDevice() || dirent.isBlockDevice()) {
        skipped.push({ path: rel, reason: 'not a regular file, directory or symlink' });
      }
      // Gone since readdir, or a special file where a synced entry used to be.
      if (entry) changes.push({ type: 'deleted', path: rel, entry });
      return;
    }

    if (!entry) {
      changes.push({ type: 'added', path: rel, stat });
    } else if (!sameAsEntry(stat, entry)) {
      changes.push({ type: 'modified', path: rel, stat, entry });
    } else if (isRacy(stat, entry.syncedAtNs)) {
      let hash: string;
      try {
        hash = await hashFile(abs);
      } catch (err) {
        if (isGone(err)) changes.push({ type: 'deleted', path: rel, entry });
        else skipped.push({ path: rel, reason: describe(err) });
        return;
      }
      if (entry.hash === null || hash !== entry.hash) changes.push({ type: 'modified', path: rel, stat, entry });
    }
    if (stat.kind === 'dir') subdirs.push(rel);
  };

  let batch: Dirent[] = [];
  const flush = async (): Promise<void> => {
    const b = batch;
    batch = [];
    await Promise.all(b.map(visit));
  };
  try {
    for await (const dirent of handle) {
      batch.push(dirent);
      if (batch.length >= STAT_CONCURRENCY) await flush();
    }
    await flush();
  } catch (err) {
    // The listing is incomplete: what was found stands, but nothing may be called deleted.
    await flush();
    skipped.push({ path: dir, reason: describe(err) });
    return result();
  }

  reportDeleted(known.values());
  return result();
}

export type WalkItem = ScanChange | ({ type: 'skipped' } & ScanSkipped);

export interface WalkOptions {
  /**
   * Called for each local subdirectory before descending into it, with its change when it
   * has one (added, or modified e.g. file→dir); returning false skips its subtree.
   */
  descend?: (dir: string, change?: ScanChange) => boolean;
}

/**
 * Depth-first comparison of the tree below `start` ('' = whole tree), yielding changes and
 * skipped paths. A deleted directory yields one 'deleted' for itself, not its descendants.
 * The caller may update the database between items: nothing here holds a DB cursor open
 * across a yield. Each directory's changes are yielded before `descend` is asked about its
 * subdirectories.
 */
export async function* walk(
  root: string,
  db: StateDb,
  start: string,
  excluder: Excluder,
  opts: WalkOptions = {},
): AsyncGenerator<WalkItem> {
  // Directories still to visit: bounded by depth × siblings, never the whole tree.
  const stack: string[] = [start];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const { changes, subdirs, skipped } = await compareDir(root, db, dir, excluder);
    for (const change of changes) yield change;
    for (const s of skipped) yield { type: 'skipped', path: s.path, reason: s.reason };

    let next = subdirs;
    if (opts.descend) {
      const dirChanges = new Map<string, ScanChange>();
      for (const c of changes) if (c.type !== 'deleted' && c.stat.kind === 'dir') dirChanges.set(c.path, c);
      next = subdirs.filter((d) => opts.descend!(d, dirChanges.get(d)));
    }
    // Pushed in reverse so that they are visited in path order.
    for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]!);
  }
}
