/**
 * Compares the local tree with the state database, one directory at a time.
 *
 * Memory: only one directory's listing (its disk names and its DB children) is held at
 * a time, plus the stack of directories still to visit; never the whole tree.
 *
 * One file (over 400 lines) on purpose: the stat, racy-clean and hashing rules here
 * (lstatLocal, sameAsEntry, isRacy, hashFile; the cycle reuses them) are what compareDir
 * and walk apply, and read best next to them.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readlinkSync, readSync, type Dirent } from 'node:fs';
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

/**
 * How many children of one directory are examined at once. lstat is synchronous
 * (lstatLocalSync); what overlaps is the hashing of racy files bigger than SYNC_HASH_MAX.
 */
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
export function comparePaths(a: string, b: string): number {
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

/**
 * lstat reduced to what sync needs; null if the path is gone or is not a file, dir or symlink.
 *
 * Synchronous underneath: measured on a burst of 10,000 new files, the async
 * `fs.promises.lstat` cost ~14 µs of main-thread time per call (its request object, the
 * BigInt stat array, the round trip through the thread pool) against a few µs for the
 * system call itself. The price is that a very slow disk or network mount stalls the
 * engine for the duration of each call, as git's index refresh does.
 */
export function lstatLocalSync(absPath: string): LocalStat | null {
  let st;
  try {
    st = lstatSync(absPath, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    if (isGone(err)) return null; // ENOTDIR: a parent is not a folder now
    throw err;
  }
  if (!st) return null;
  const mode = Number(st.mode & 0o7777n);
  const base = { mtimeNs: st.mtimeNs, mode, ino: st.ino };
  if (st.isFile()) return { kind: 'file', size: Number(st.size), target: null, ...base };
  if (st.isDirectory()) return { kind: 'dir', size: 0, target: null, ...base };
  if (st.isSymbolicLink()) {
    let target: string;
    try {
      target = readlinkSync(absPath);
    } catch (err) {
      // Replaced by something else between lstat and readlink.
      if (isGone(err) || errCode(err) === 'EINVAL') return null;
      throw err;
    }
    return { kind: 'symlink', size: Buffer.byteLength(target), target, ...base };
  }
  return null; // fifo, socket, device
}

/** lstatLocalSync for async callers (a rejected promise where that throws). */
export async function lstatLocal(absPath: string): Promise<LocalStat | null> {
  return lstatLocalSync(absPath);
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

/**
 * Files whose stat says they are at most this big are read in one synchronous call: for
 * the small files that make up most of a big tree, the event-loop round trips of an async
 * open/read/close cost far more than the read (10,000 racy 2 KB files after a burst:
 * ~1 s async, well under 0.2 s like this).
 */
const SYNC_HASH_MAX = 64 * 1024;
const syncHashBuf = Buffer.allocUnsafe(SYNC_HASH_MAX + 1);

function hashSmallFileSync(absPath: string): string | null {
  const fd = openSync(absPath, 'r');
  let n = 0;
  try {
    for (;;) {
      const r = readSync(fd, syncHashBuf, n, syncHashBuf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === syncHashBuf.length) return null; // grew past the limit since its stat
    }
  } finally {
    closeSync(fd);
  }
  return createHash('sha256').update(syncHashBuf.subarray(0, n)).digest('hex');
}

/**
 * sha256 of a file's content, hex, streamed in fixed-size chunks; `sizeHint` (the size
 * its stat gave) lets a small file be read in one go.
 */
export async function hashFile(absPath: string, sizeHint?: number): Promise<string> {
  if (sizeHint !== undefined && sizeHint <= SYNC_HASH_MAX) {
    const h = hashSmallFileSync(absPath);
    if (h !== null) return h;
  }
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
 *
 * With `checkAncestors` (for a folder named by a hint, not found by a walk of its parent),
 * the folders above `dir` are lstat'ed too: one that is a symlink or a file puts `dir`
 * outside the synced tree (N5 of docs/sync-semantics.md), as if it had vanished; it is
 * never read through the link.
 */
export async function compareDir(
  root: string,
  db: StateDb,
  dir: string,
  excluder: Excluder,
  checkAncestors = false,
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

  if (checkAncestors && dir !== '' && !ancestorsAreDirs(root, dir)) {
    reportDeleted(db.children(dir));
    return result();
  }

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
        hash = await hashFile(abs, stat.size);
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

/** Whether every folder above `rel` (inside `root`) is a folder, not a symlink, file or gap. */
function ancestorsAreDirs(root: string, rel: string): boolean {
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) {
    let st;
    try {
      st = lstatSync(path.join(root, rel.slice(0, i)), { throwIfNoEntry: false });
    } catch {
      return false; // ENOTDIR: a folder above is no folder now
    }
    if (!st?.isDirectory()) return false;
  }
  return true;
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
