/**
 * Operations on the remote root that rsync cannot do (probe, create, rename,
 * the pair marker), for both kinds of remote:
 * - ssh: ONE sshExec() per call, a fixed POSIX sh script in which every path
 *   is shQuote()d (see ssh.ts for why the script travels on stdin);
 * - local: node:fs.
 * Failures (unreachable, auth, permissions) become LipsyncError.
 *
 * The remote LOCK serializes clients writing one server folder: the directory
 * ROOT/.lipsync/lock, created with a plain (non -p) mkdir, which is atomic on
 * POSIX file systems (exactly one of several racing mkdirs succeeds; on NFS
 * too, v3 and later). Its `owner` file says who holds it; the holder touches
 * that file now and then (refreshLock) so the others can tell a live lock
 * from one whose holder died (older than the TTL: broken). Ages are computed
 * with the SERVER's clock (file mtimes are set by it and compared with its
 * `date +%s`), so a client clock that is off does not matter; see lock().
 */

import { constants as fsConstants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  access,
  link,
  lstat,
  mkdir,
  readFile,
  readdir,
  rename as fsRename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { resolve } from 'node:path';
import type { RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError, classifyFailure, type FailureContext } from '../errors.js';
import { closeMaster, shQuote, sshExec } from './ssh.js';
import { rsyncVersion as localRsyncVersion, parseRsyncVersion } from './rsync.js';
import type { RunResult } from '../proc/run.js';
import {
  INCOMING_DIR,
  LOCK_BREAK_DIR,
  LOCK_DIR,
  LOCK_OWNER_FILE,
  MARKER_FILE,
  META_DIR,
  TRASH_DIR,
} from '../../../shared/layout.js';
import { LocalAncestors, SymlinkedParentError, existsInRoot, renameInRoot } from '../safe-fs.js';

export { INCOMING_DIR, LOCK_BREAK_DIR, LOCK_DIR, LOCK_OWNER_FILE, MARKER_FILE, META_DIR, TRASH_DIR };

/** A lock-break dir older than this was left by a client that died mid-break. */
export const LOCK_BREAK_STALE_MS = 30_000;

/** A staging-name prefix: letters, digits, '-' and '_' only (it is used in a shell glob). */
export function checkIncomingPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`invalid staging name: ${JSON.stringify(prefix)}`);
  return prefix;
}

export interface LockResult {
  acquired: boolean;
  /** When not acquired: the owner text of the current holder ('' if it has not written it yet). */
  holder?: string;
  /** When acquired by breaking a stale lock: the owner text of that dead holder. */
  brokeStale?: string;
}

export type RootState = 'dir' | 'missing' | 'not-dir' | 'no-access';

export interface MoveResult {
  from: string;
  to: string;
  ok: boolean;
  /** 'missing' when `from` does not exist; otherwise the error text. */
  reason?: string;
}

export interface RemoteOps {
  /** rsync's version on the remote side (null if rsync is not on its PATH) and what the root is. */
  probe(): Promise<{ rsyncVersion: string | null; root: RootState }>;
  /** mkdir -p root. */
  createRoot(): Promise<void>;
  /**
   * mkdir -p root/.lipsync/{partial,trash,incoming}; the root itself must exist
   * ('remote-missing' otherwise). With `leftoverPrefix`, also removes this client's
   * staging folders left in .lipsync/incoming by an interrupted folder push
   * (names starting with it; see INCOMING_DIR).
   */
  prepareMeta(leftoverPrefix?: string): Promise<void>;
  /** Removes the staging folders ROOT/.lipsync/incoming/NAME whose NAME starts with `prefix`. */
  clearIncoming(prefix: string): Promise<void>;
  /**
   * Renames inside the root, in order. For each move: if `to` exists it is
   * first moved to trashDir/<to> (a '.1', '.2'... suffix if that is taken);
   * the parent of `to` is created; then `from` is moved to `to`. A `from`
   * that does not exist gives ok:false, reason 'missing'. Paths are relative
   * to the root; trashDir too. Never through a symlink (N5 of
   * docs/sync-semantics.md): a move with a folder above `from`, `to` or the
   * trash path, inside the root, that is a symlink or a file is refused
   * (ok:false); on an ssh remote each folder is checked just before the move
   * and the target's again after it (a swap in between is moved back).
   */
  rename(moves: { from: string; to: string }[], trashDir: string): Promise<MoveResult[]>;
  /** The pair id in root/.lipsync/pair-id, or null when there is none. */
  readMarker(): Promise<string | null>;
  /**
   * Writes root/.lipsync/pair-id unless it already exists, and returns the id
   * that is there afterwards: `pairId`, or the one another client wrote first
   * (two clients joining one empty folder at once agree on the first). The
   * file appears whole (a hard link of a written temporary file). The root
   * must exist.
   */
  claimMarker(pairId: string): Promise<string>;
  /**
   * Tries once to take the lock ROOT/.lipsync/lock for `owner` (any text
   * naming this client: host, pid, a random id; it must be unique per
   * holder). Creates ROOT/.lipsync if needed; the root must exist.
   * If the lock is held and its owner file (or, before the owner wrote it,
   * the lock dir) was last modified more than `ttlMs` ago by the SERVER's
   * clock, the holder is presumed dead: the lock is renamed aside
   * (.lipsync/lock.stale.<random>, atomic), removed, and taken. Breaking is
   * done under a second mkdir lock (.lipsync/lock.break) and re-checks the
   * age inside it, so two clients breaking the same stale lock cannot both
   * win. Never waits: returns {acquired:false, holder} when someone holds it.
   *
   * Limits: ages have whole-second resolution on an ssh remote (GNU/busybox
   * `stat -c %Y`, else BSD `stat -f %m`; with neither, a lock is never
   * considered stale). A holder that is alive but stops refreshing for longer
   * than the TTL loses the lock (refreshLock then returns false). On a network
   * file system the mtimes come from the file server's clock.
   */
  lock(owner: string, ttlMs: number): Promise<LockResult>;
  /** Heartbeat: touches the owner file if the lock is still `owner`'s; false when it is not (lost or broken). */
  refreshLock(owner: string): Promise<boolean>;
  /** Removes the lock only if its owner file says `owner`; returns whether it did. */
  unlock(owner: string): Promise<boolean>;
  /**
   * Removes ROOT/.lipsync/trash/<YYYY-MM-DD> directories whose NAME (the UTC
   * day the trash dir was made, see trashCutoff) is more than `olderThanDays`
   * days before `now` (computed on this computer); other entries are left
   * alone. Returns how many were removed.
   */
  purgeTrash(olderThanDays: number, now?: Date): Promise<number>;
  /** Ends the shared ssh connection (no-op for a local remote). */
  close(): Promise<void>;
}

/**
 * Checks and normalises a path relative to the root: not empty, not absolute,
 * no '.' or '..' component, no NUL. Trailing and doubled slashes are dropped.
 */
export function normalizeRelPath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '');
  if (p.includes('\0') || p.startsWith('/') || parts.length === 0 || parts.some((x) => x === '.' || x === '..')) {
    throw new LipsyncError('unknown', `Invalid relative path ${JSON.stringify(p)}.`, {
      detail: 'paths inside a pair must be relative, without . or .. components',
    });
  }
  return parts.join('/');
}

function join(root: string, rel: string): string {
  return root === '/' ? `/${rel}` : `${root}/${rel}`;
}

/** The owner text as stored: trailing newlines dropped (the shell's $(cat) drops them too). */
function checkOwner(owner: string): string {
  const o = owner.replace(/\n+$/, '');
  if (o === '' || o.includes('\0')) {
    throw new LipsyncError('unknown', `Invalid lock owner ${JSON.stringify(owner)}.`, {
      detail: 'the owner text must be non-empty and contain no NUL',
    });
  }
  return o;
}

function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new LipsyncError('unknown', `Invalid lock TTL ${ttlMs} ms.`);
  return ttlMs;
}

/**
 * Trash day dirs whose name sorts before this 'YYYY-MM-DD' are older than
 * `olderThanDays` days. Trash dirs are named by UTC day (toISOString), so
 * the cutoff is computed in UTC too.
 */
export function trashCutoff(olderThanDays: number, now: Date = new Date()): string {
  if (!Number.isFinite(olderThanDays) || olderThanDays < 0)
    throw new LipsyncError('unknown', `Invalid trash retention ${olderThanDays} days.`);
  return new Date(now.getTime() - Math.floor(olderThanDays) * 86_400_000).toISOString().slice(0, 10);
}

const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;

/** Removes day DIRECTORIES named before `cutoff` in `trash` (absent: 0); one that cannot be removed is skipped. */
async function purgeDayDirs(trash: string, cutoff: string): Promise<number> {
  let names: string[];
  try {
    names = (await readdir(trash, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 0;
    throw fsError(e, trash, 'read');
  }
  let removed = 0;
  for (const name of names.sort()) {
    if (!DAY_DIR.test(name) || name >= cutoff) continue;
    try {
      await rm(`${trash}/${name}`, { recursive: true, force: true });
      removed++;
    } catch {
      // Left for next time (e.g. a file in it we may not delete); the others still go.
    }
  }
  return removed;
}

/**
 * A staging folder is removed by the client that made it, or at its next start; one of a
 * client that never came back is removed when it is this old (by its folder's mtime).
 */
export const INCOMING_STALE_DAYS = 7;

async function purgeStaleIncoming(dir: string, now: Date = new Date()): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    try {
      const st = await lstat(join(dir, n));
      if (now.getTime() - st.mtimeMs > INCOMING_STALE_DAYS * 86_400_000)
        await rm(join(dir, n), { recursive: true, force: true });
    } catch {
      // gone meanwhile, or not ours to remove: left alone
    }
  }
}

/** The local root must be an existing directory: 'local-missing' / 'local-not-dir' otherwise. */
async function requireLocalRoot(localRoot: string): Promise<void> {
  let st;
  try {
    st = await stat(localRoot);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new LipsyncError('local-missing', `The folder ${localRoot} does not exist.`, {
        fix: 'Check the local folder in the pair settings (is the disk mounted?), or create it.',
        detail: (e as Error).message,
      });
    if (code === 'ENOTDIR')
      throw new LipsyncError('local-not-dir', `${localRoot} is not a folder.`, {
        fix: "Choose a folder as the pair's local path.",
        detail: (e as Error).message,
      });
    throw fsError(e, localRoot, 'open');
  }
  if (!st.isDirectory())
    throw new LipsyncError('local-not-dir', `${localRoot} is not a folder.`, {
      fix: "Choose a folder as the pair's local path.",
    });
}

/**
 * mkdir -p LOCALROOT/.lipsync/{partial,trash} (what a pull writes into);
 * the local root itself must exist ('local-missing' otherwise: never created).
 */
export async function prepareLocalMeta(localRoot: string): Promise<void> {
  const root = resolve(localRoot);
  await requireLocalRoot(root);
  for (const d of ['partial', 'trash']) {
    try {
      await mkdir(join(root, `${META_DIR}/${d}`), { recursive: true });
    } catch (e) {
      throw fsError(e, join(root, META_DIR), 'create');
    }
  }
}

/**
 * Removes LOCALROOT/.lipsync/trash/<YYYY-MM-DD> directories more than
 * `olderThanDays` days old by their name (as RemoteOps.purgeTrash); returns
 * how many were removed.
 */
export async function purgeLocalTrash(localRoot: string, olderThanDays: number, now?: Date): Promise<number> {
  const cutoff = trashCutoff(olderThanDays, now);
  const root = resolve(localRoot);
  await requireLocalRoot(root);
  return purgeDayDirs(join(root, TRASH_DIR), cutoff);
}

export function remoteOps(remote: RemoteSpec, ssh: SshOptions): RemoteOps {
  return remote.kind === 'local' ? new LocalOps(remote.path) : new SshOps(remote, ssh);
}

// ---------------------------------------------------------------------------
// Local

function fsError(e: unknown, path: string, what: string): LipsyncError {
  const code = (e as NodeJS.ErrnoException).code;
  const detail = `${what}: ${(e as Error).message}`;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new LipsyncError('permission-denied', `No permission to ${what} ${path}.`, {
        fix: `Check that your user can write ${path}.`,
        detail,
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new LipsyncError('disk-full', `The disk holding ${path} is full.`, {
        fix: 'Free some space on that disk, then try again.',
        detail,
      });
    case 'ENOENT':
      return new LipsyncError('remote-missing', `The folder ${path} does not exist.`, {
        fix: 'Check the path (is the disk mounted?), or create the folder.',
        detail,
      });
    case 'ENOTDIR':
      return new LipsyncError('remote-not-dir', `${path} is not a folder.`, {
        fix: "Choose a folder as the pair's remote path.",
        detail,
      });
    default:
      return new LipsyncError('unknown', `Could not ${what} ${path}: ${(e as Error).message}`, { detail });
  }
}

class LocalOps implements RemoteOps {
  constructor(private readonly root: string) {}

  async probe(): Promise<{ rsyncVersion: string | null; root: RootState }> {
    const version = await localRsyncVersion();
    let root: RootState;
    try {
      const st = await stat(this.root);
      if (!st.isDirectory()) root = 'not-dir';
      else {
        try {
          await access(this.root, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
          root = 'dir';
        } catch {
          root = 'no-access';
        }
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') root = 'no-access';
      else if (code === 'ENOENT' || code === 'ENOTDIR')
        root = (await isDanglingLink(this.root)) ? 'not-dir' : 'missing';
      else if (code === 'ELOOP') root = 'not-dir';
      else throw fsError(e, this.root, 'read');
    }
    return { rsyncVersion: version, root };
  }

  async createRoot(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
    } catch (e) {
      throw fsError(e, this.root, 'create');
    }
  }

  private async requireRoot(): Promise<void> {
    let st;
    try {
      st = await stat(this.root);
    } catch (e) {
      throw fsError(e, this.root, 'open');
    }
    if (!st.isDirectory())
      throw fsError(Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }), this.root, 'open');
  }

  /** As META_CHECK (ssh): none of our folders, nor a trash day, may be a symlink or a file. */
  private async checkMeta(): Promise<void> {
    const days = await readdir(join(this.root, TRASH_DIR)).catch(() => [] as string[]);
    for (const rel of [
      META_DIR,
      `${META_DIR}/partial`,
      TRASH_DIR,
      INCOMING_DIR,
      ...days.map((d) => `${TRASH_DIR}/${d}`),
    ]) {
      const st = await lstat(join(this.root, rel)).catch(() => null);
      const day = rel.startsWith(`${TRASH_DIR}/`);
      if (st && (st.isSymbolicLink() || (!day && !st.isDirectory()))) throw metaNotDirError(join(this.root, rel), null);
    }
  }

  async prepareMeta(leftoverPrefix?: string): Promise<void> {
    await this.requireRoot();
    await this.checkMeta();
    for (const d of ['partial', 'trash', 'incoming']) {
      try {
        await mkdir(join(this.root, `${META_DIR}/${d}`), { recursive: true });
      } catch (e) {
        throw fsError(e, join(this.root, META_DIR), 'create');
      }
    }
    if (leftoverPrefix !== undefined) await this.clearIncoming(leftoverPrefix);
  }

  async clearIncoming(prefix: string): Promise<void> {
    checkIncomingPrefix(prefix);
    await this.checkMeta(); // never rm -r through a planted link
    const dir = join(this.root, INCOMING_DIR);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return; // nothing staged
    }
    for (const n of names) if (n.startsWith(prefix)) await rm(join(dir, n), { recursive: true, force: true });
  }

  async rename(moves: { from: string; to: string }[], trashDir: string): Promise<MoveResult[]> {
    const trash = normalizeRelPath(trashDir);
    const checked = moves.map((m) => ({ m, from: normalizeRelPath(m.from), to: normalizeRelPath(m.to) }));
    await this.requireRoot();
    const results: MoveResult[] = [];
    const root = this.root;
    for (const { m, from, to } of checked) {
      try {
        // Each rename walks the folders with O_NOFOLLOW (safe-fs.ts): never through a symlink.
        const above = new LocalAncestors(root).blockedBy(from);
        if (above !== null) throw new SymlinkedParentError(from, above);
        if (!existsInRoot(root, from)) {
          results.push({ ...m, ok: false, reason: 'missing' });
          continue;
        }
        if (from === to) {
          results.push({ ...m, ok: true });
          continue;
        }
        let trashed: string | null = null;
        if (existsInRoot(root, to)) {
          const base = `${trash}/${to}`;
          let target = base;
          for (let n = 1; existsInRoot(root, target); n++) target = `${base}.${n}`;
          renameInRoot(root, to, target, true);
          trashed = target;
        }
        try {
          renameInRoot(root, from, to, true);
        } catch (e) {
          if (trashed !== null) {
            try {
              renameInRoot(root, trashed, to);
            } catch {
              // it stays in the trash
            }
          }
          throw e;
        }
        results.push({ ...m, ok: true });
      } catch (e) {
        results.push({ ...m, ok: false, reason: (e as Error).message });
      }
    }
    return results;
  }

  async readMarker(): Promise<string | null> {
    try {
      return (await readFile(join(this.root, MARKER_FILE), 'utf8')).trim();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw fsError(e, join(this.root, MARKER_FILE), 'read');
    }
  }

  async claimMarker(pairId: string): Promise<string> {
    await this.requireRoot();
    const file = join(this.root, MARKER_FILE);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(join(this.root, META_DIR), { recursive: true });
      await writeFile(tmp, `${pairId}\n`);
      try {
        await link(tmp, file); // fails with EEXIST if another client was first
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          // theirs stands
        } else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EMLINK') {
          // no hard links on this file system: a rename, if there is still none
          if ((await this.readMarker()) === null) await fsRename(tmp, file);
        } else throw e;
      }
    } catch (e) {
      throw fsError(e, file, 'write');
    } finally {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
    const now = await this.readMarker();
    if (!now)
      throw new LipsyncError('remote-missing', `Could not write the lipsync marker ${file}.`, {
        fix: 'Check that the folder is writable and that the disk is not full, then retry.',
      });
    return now;
  }

  // --- lock -----------------------------------------------------------------

  private get lockDir(): string {
    return join(this.root, LOCK_DIR);
  }

  private async readOwner(): Promise<string | null> {
    try {
      return (await readFile(join(this.root, LOCK_OWNER_FILE), 'utf8')).replace(/\n+$/, '');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
      throw fsError(e, join(this.root, LOCK_OWNER_FILE), 'read');
    }
  }

  /** ms since `p` was modified, null if it does not exist. */
  private async ageMs(p: string): Promise<number | null> {
    try {
      return Date.now() - (await lstat(p)).mtimeMs;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw fsError(e, p, 'read');
    }
  }

  private async isStale(ttlMs: number): Promise<boolean> {
    const age = (await this.ageMs(join(this.root, LOCK_OWNER_FILE))) ?? (await this.ageMs(this.lockDir));
    return age !== null && age > ttlMs;
  }

  /** mkdir `dir`: true if created, false if it exists. */
  private async tryMkdir(dir: string): Promise<boolean> {
    try {
      await mkdir(dir);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fsError(e, dir, 'create');
    }
  }

  private async take(owner: string): Promise<boolean> {
    if (!(await this.tryMkdir(this.lockDir))) return false;
    const file = join(this.root, LOCK_OWNER_FILE);
    const tmp = `${file}.tmp`;
    try {
      await writeFile(tmp, owner);
      await fsRename(tmp, file);
    } catch (e) {
      await rm(this.lockDir, { recursive: true, force: true }).catch(() => undefined);
      throw fsError(e, file, 'write');
    }
    return true;
  }

  /** Under LOCK_BREAK_DIR: if the lock is (still) stale, renames it aside and removes it. Returns the dead holder's text. */
  private async breakStale(ttlMs: number): Promise<string | null> {
    const breaker = join(this.root, LOCK_BREAK_DIR);
    if (!(await this.tryMkdir(breaker))) {
      const age = await this.ageMs(breaker);
      if (age === null || age <= LOCK_BREAK_STALE_MS) return null;
      await rm(breaker, { recursive: true, force: true }).catch(() => undefined);
      if (!(await this.tryMkdir(breaker))) return null;
    }
    try {
      if (!(await this.isStale(ttlMs))) return null;
      const dead = (await this.readOwner()) ?? '';
      const aside = join(this.root, `${META_DIR}/lock.stale.${randomBytes(8).toString('hex')}`);
      try {
        await fsRename(this.lockDir, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw fsError(e, this.lockDir, 'move');
      }
      await rm(aside, { recursive: true, force: true }).catch(() => undefined);
      return dead;
    } finally {
      await rm(breaker, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async lock(owner: string, ttlMs: number): Promise<LockResult> {
    const o = checkOwner(owner);
    checkTtl(ttlMs);
    await this.requireRoot();
    await this.checkMeta(); // the lock is never made through a planted link
    const meta = join(this.root, META_DIR);
    try {
      await mkdir(meta, { recursive: true });
    } catch (e) {
      throw fsError(e, meta, 'create');
    }
    if (await this.take(o)) return { acquired: true };
    if (await this.isStale(ttlMs)) {
      const dead = await this.breakStale(ttlMs);
      if (await this.take(o)) return dead === null ? { acquired: true } : { acquired: true, brokeStale: dead };
    }
    return { acquired: false, holder: (await this.readOwner()) ?? '' };
  }

  async refreshLock(owner: string): Promise<boolean> {
    const o = checkOwner(owner);
    if ((await this.readOwner()) !== o) return false;
    const now = new Date();
    try {
      await utimes(join(this.root, LOCK_OWNER_FILE), now, now);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw fsError(e, join(this.root, LOCK_OWNER_FILE), 'write');
    }
  }

  async unlock(owner: string): Promise<boolean> {
    const o = checkOwner(owner);
    if ((await this.readOwner()) !== o) return false;
    const aside = join(this.root, `${META_DIR}/lock.released.${randomBytes(8).toString('hex')}`);
    try {
      await fsRename(this.lockDir, aside);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw fsError(e, this.lockDir, 'move');
    }
    await rm(aside, { recursive: true, force: true }).catch(() => undefined);
    return true;
  }

  async purgeTrash(olderThanDays: number, now?: Date): Promise<number> {
    const cutoff = trashCutoff(olderThanDays, now);
    await this.requireRoot();
    await this.checkMeta(); // never rm -r through a planted link
    await purgeStaleIncoming(join(this.root, INCOMING_DIR), now);
    return purgeDayDirs(join(this.root, TRASH_DIR), cutoff);
  }

  async close(): Promise<void> {}
}

async function isDanglingLink(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isSymbolicLink();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// ssh

/** Script exit codes (below ssh's 255). */
const EXIT_ROOT_MISSING = 3;
const EXIT_ROOT_NOT_DIR = 4;
/** A folder of ROOT/.lipsync (or a trash day) is a symlink or a file: see META_CHECK. */
const EXIT_META_NOT_DIR = 7;

/**
 * N5 for our own folder: rsync writes its temp files into .lipsync and the versions it
 * replaces into .lipsync/trash/DAY/TIME. Another client that swaps one of them for a
 * symlink would have those writes land outside the root; rsync 3.5.0 refuses them, but
 * then drops the backup silently (measured): a version lost. So a transfer does not start
 * while one is a symlink or a file; the error names it and says what to do.
 */
const META_CHECK = `
for d in "$R/${META_DIR}" "$R/${META_DIR}/partial" "$R/${TRASH_DIR}" "$R/${INCOMING_DIR}"; do
  if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then printf 'lipsync: not a folder: %s\\n' "$d" >&2; exit ${EXIT_META_NOT_DIR}; fi
done
for d in "$R/${TRASH_DIR}"/*; do
  if [ -L "$d" ]; then printf 'lipsync: not a folder: %s\\n' "$d" >&2; exit ${EXIT_META_NOT_DIR}; fi
done`;

/** The error for META_CHECK's refusal (also the local-path backend's). */
function metaNotDirError(path: string, host: string | null, detail?: string): LipsyncError {
  return new LipsyncError(
    'remote-not-dir',
    `${path}${host ? ` on ${host}` : ''} is a symlink or a file, not lipsync's own folder: nothing was transferred.`,
    {
      fix: `Someone replaced it on the server. Remove that symlink or file there (lipsync makes the folder again); the pair then goes on by itself.`,
      ...(detail !== undefined ? { detail } : {}),
    },
  );
}

/** Shell functions of the lock scripts; need R, M (R/.lipsync), L (the lock dir), B (the break dir). */
const LOCK_FUNCTIONS = `
M="$R/${META_DIR}"; L="$R/${LOCK_DIR}"; B="$R/${LOCK_BREAK_DIR}"
lipsync_mtime() {
  t=$(stat -c %Y -- "$1" 2>/dev/null) || t=$(stat -f %m -- "$1" 2>/dev/null) || t=
  case $t in ''|*[!0-9]*) return 1 ;; esac
  printf '%s' "$t"
}
lipsync_age() {
  t=$(lipsync_mtime "$1") || return 1
  n=$(date +%s)
  case $n in ''|*[!0-9]*) return 1 ;; esac
  printf '%s' $((n - t))
}
lipsync_stale() {
  a=$(lipsync_age "$L/owner") || a=$(lipsync_age "$L") || return 1
  [ "$a" -gt "$TTL" ]
}
lipsync_take() {
  if ! err=$(mkdir -- "$L" 2>&1); then
    case $err in *'File exists'*) return 1 ;; esac
    if [ -e "$L" ] || [ -L "$L" ]; then return 1; fi
    printf '%s\n' "$err" >&2; exit 1
  fi
  if printf '%s' "$O" > "$L/owner.tmp" && mv -f -- "$L/owner.tmp" "$L/owner"; then return 0; fi
  rm -rf -- "$L"
  exit 1
}
lipsync_break() {
  if ! mkdir -- "$B" 2>/dev/null; then
    a=$(lipsync_age "$B") && [ "$a" -gt ${Math.round(LOCK_BREAK_STALE_MS / 1000)} ] && rmdir -- "$B" 2>/dev/null && mkdir -- "$B" 2>/dev/null || return 1
  fi
  rc=1
  if lipsync_stale; then
    S=$(cat -- "$L/owner" 2>/dev/null)
    if mv -- "$L" "$A" 2>/dev/null; then rm -rf -- "$A"; rc=0; fi
  fi
  rmdir -- "$B" 2>/dev/null
  return $rc
}`;

/** Lines our scripts print start with this, so a chatty login (motd, echo in .bashrc) is ignored. */
const OUT = 'LIPSYNC:';
/** Prints the marker file $M's contents after a tag (or a 'none' line): read by parseMarker. */
const PRINT_MARKER = `if [ -f "$M" ]; then printf '${OUT}marker:'; cat -- "$M"; else printf '${OUT}none\\n'; fi`;

/** The pair id PRINT_MARKER printed, or null when there is no marker. */
function parseMarker(stdout: string): string | null {
  const at = stdout.indexOf(`${OUT}marker:`);
  return at === -1 ? null : stdout.slice(at + `${OUT}marker:`.length).trim();
}

const REQUIRE_ROOT = `
if [ ! -d "$R" ]; then
  if [ -e "$R" ] || [ -L "$R" ]; then echo "lipsync: not a directory: $R" >&2; exit ${EXIT_ROOT_NOT_DIR}; fi
  echo "lipsync: no such directory: $R" >&2; exit ${EXIT_ROOT_MISSING}
fi`;

const PROBE = `
if command -v rsync >/dev/null 2>&1; then
  v=$(rsync --version 2>/dev/null | head -n 1)
  printf '${OUT}rsync:%s\\n' "$v"
else
  printf '${OUT}rsync:\\n'
fi
if [ -d "$R" ]; then
  if [ -r "$R" ] && [ -w "$R" ] && [ -x "$R" ]; then s=dir; else s=no-access; fi
elif [ -e "$R" ] || [ -L "$R" ]; then
  s=not-dir
else
  d=$R
  while :; do
    d=\${d%/*}
    [ -z "$d" ] && d=/
    if [ -e "$d" ] || [ "$d" = / ]; then break; fi
  done
  if [ -d "$d" ] && [ ! -x "$d" ]; then s=no-access; else s=missing; fi
fi
printf '${OUT}root:%s\\n' "$s"`;

/**
 * lipsync_dirs PATH [mk]: succeeds when no folder between $R and PATH (an absolute path
 * below $R) is a symlink or a file (N5); with mk, the missing ones are made, one mkdir
 * each, and checked again after it. lipsync_mv runs it just before each mv, and again
 * for the target after it: a folder swapped for a symlink in between (another client
 * racing us) is noticed and the move undone. The window left is between the check and
 * the mv (a shell has no renameat).
 */
const MOVE_FUNCTIONS = `
case $R in */) P=$R ;; *) P=$R/ ;; esac
lipsync_dirs() {
  rest=\${1#"$P"}; d=\${P%/}
  while :; do
    case $rest in */*) ;; *) return 0 ;; esac
    d=$d/\${rest%%/*}; rest=\${rest#*/}
    if [ -L "$d" ]; then return 1; fi
    [ -d "$d" ] && continue
    [ -e "$d" ] && return 1
    [ "$2" = mk ] || return 0
    mkdir -- "$d" 2>/dev/null
    if [ -L "$d" ] || [ ! -d "$d" ]; then return 1; fi
  done
}
lipsync_fail() { printf '${OUT}mv:%s:fail:%s\\n' "$1" "$(printf '%s' "$2" | tr '\\n' ' ')"; }
lipsync_mv() {
  if ! lipsync_dirs "$2"; then lipsync_fail "$1" "a folder above it is a symlink or a file"; return 0; fi
  if [ ! -e "$2" ] && [ ! -L "$2" ]; then printf '${OUT}mv:%s:missing\\n' "$1"; return 0; fi
  if [ "$2" = "$3" ]; then printf '${OUT}mv:%s:ok\\n' "$1"; return 0; fi
  if ! lipsync_dirs "$3" mk; then lipsync_fail "$1" "a folder above the target is a symlink or a file"; return 0; fi
  tt=
  if [ -e "$3" ] || [ -L "$3" ]; then
    tt=$4; n=0
    while [ -e "$tt" ] || [ -L "$tt" ]; do n=$((n + 1)); tt="$4.$n"; done
    if ! lipsync_dirs "$tt" mk; then lipsync_fail "$1" "a folder above the trash is a symlink or a file"; return 0; fi
    if ! err=$(mv -f -- "$3" "$tt" 2>&1); then lipsync_fail "$1" "$err"; return 0; fi
  fi
  if ! err=$(mv -f -- "$2" "$3" 2>&1); then
    [ -n "$tt" ] && mv -f -- "$tt" "$3" 2>/dev/null
    lipsync_fail "$1" "$err"; return 0
  fi
  if ! lipsync_dirs "$3"; then
    mv -f -- "$3" "$2" 2>/dev/null
    lipsync_fail "$1" "a folder above the target became a symlink during the move (moved back)"; return 0
  fi
  printf '${OUT}mv:%s:ok\\n' "$1"
}`;

/** Removes $R/.lipsync/incoming/PREFIX* (the prefix is checked: a glob of safe characters). */
function clearIncomingScript(prefix: string): string {
  return `for d in "$R/${INCOMING_DIR}/"${checkIncomingPrefix(prefix)}*; do
  if [ -e "$d" ] || [ -L "$d" ]; then rm -rf -- "$d" || exit 1; fi
done`;
}

/** Lines our script printed, without the prefix (login noise dropped). */
function outLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith(OUT))
    .map((l) => l.slice(OUT.length));
}

class SshOps implements RemoteOps {
  private readonly ctx: FailureContext;
  constructor(
    private readonly remote: Extract<RemoteSpec, { kind: 'ssh' }>,
    private readonly ssh: SshOptions,
    private readonly timeoutMs = 120_000,
  ) {
    this.ctx = { host: remote.host, path: remote.path };
    if (remote.user !== undefined) this.ctx.user = remote.user;
    if (remote.port !== undefined) this.ctx.port = remote.port;
    if (ssh.identityFile !== undefined) this.ctx.identityFile = ssh.identityFile;
  }

  /** Runs `body` with R set to the quoted root; throws LipsyncError on failure. */
  private async exec(body: string): Promise<RunResult> {
    const script = `R=${shQuote(this.remote.path)}\n${body}\n`;
    let r: RunResult;
    try {
      r = await sshExec(this.remote, this.ssh, script, { timeoutMs: this.timeoutMs });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new LipsyncError('unknown', 'The ssh program was not found on this computer.', {
          fix: 'Install OpenSSH (the ssh client), e.g. `sudo apt install openssh-client`.',
          cause: e,
        });
      }
      throw e;
    }
    if (r.timedOut) {
      throw new LipsyncError(
        'host-unreachable',
        `${this.remote.host} did not answer within ${Math.round(this.timeoutMs / 1000)} s.`,
        {
          fix: 'Check the network connection to the server, then try again.',
          detail: r.stderr,
        },
      );
    }
    if (r.code === 0) return r;
    if (r.code === EXIT_ROOT_MISSING) {
      throw new LipsyncError(
        'remote-missing',
        `The folder ${this.remote.path} does not exist on ${this.remote.host}.`,
        {
          fix: 'Check the remote folder in the pair settings (is the disk mounted?), or create it.',
          detail: r.stderr,
        },
      );
    }
    if (r.code === EXIT_META_NOT_DIR) {
      const path = /lipsync: not a folder: (.*)/.exec(r.stderr)?.[1] ?? `${this.remote.path}/${META_DIR}`;
      throw metaNotDirError(path, this.remote.host, r.stderr);
    }
    if (r.code === EXIT_ROOT_NOT_DIR) {
      throw new LipsyncError('remote-not-dir', `${this.remote.path} on ${this.remote.host} is not a folder.`, {
        fix: "Choose a folder as the pair's remote path.",
        detail: r.stderr,
      });
    }
    throw classifyFailure('ssh', r.code, r.stderr, this.ctx);
  }

  async probe(): Promise<{ rsyncVersion: string | null; root: RootState }> {
    const lines = outLines((await this.exec(PROBE)).stdout);
    const v =
      lines
        .find((l) => l.startsWith('rsync:'))
        ?.slice('rsync:'.length)
        .trim() ?? '';
    const root = lines
      .find((l) => l.startsWith('root:'))
      ?.slice('root:'.length)
      .trim();
    if (root !== 'dir' && root !== 'missing' && root !== 'not-dir' && root !== 'no-access') {
      throw new LipsyncError(
        'unknown',
        `Unexpected answer from ${this.remote.host} while checking ${this.remote.path}.`,
        { detail: lines.join('\n') },
      );
    }
    return { rsyncVersion: v === '' ? null : (parseRsyncVersion(v) ?? v), root };
  }

  async createRoot(): Promise<void> {
    await this.exec('mkdir -p -- "$R"');
  }

  async prepareMeta(leftoverPrefix?: string): Promise<void> {
    const clear = leftoverPrefix === undefined ? '' : `\n${clearIncomingScript(leftoverPrefix)}`;
    await this.exec(
      `${REQUIRE_ROOT}${META_CHECK}\nmkdir -p -- "$R/${META_DIR}/partial" "$R/${META_DIR}/trash" "$R/${INCOMING_DIR}"${clear}`,
    );
  }

  async clearIncoming(prefix: string): Promise<void> {
    await this.exec(`${REQUIRE_ROOT}${META_CHECK}\n${clearIncomingScript(prefix)}`);
  }

  async rename(moves: { from: string; to: string }[], trashDir: string): Promise<MoveResult[]> {
    const trash = normalizeRelPath(trashDir);
    const checked = moves.map((m) => ({ from: normalizeRelPath(m.from), to: normalizeRelPath(m.to) }));
    if (moves.length === 0) return [];
    const root = this.remote.path;
    const calls = checked.map(
      (m, i) =>
        `lipsync_mv ${i} ${shQuote(join(root, m.from))} ${shQuote(join(root, m.to))} ${shQuote(join(root, `${trash}/${m.to}`))}`,
    );
    const r = await this.exec(`${REQUIRE_ROOT}\n${MOVE_FUNCTIONS}\n${calls.join('\n')}`);
    const byIndex = new Map<number, { ok: boolean; reason?: string }>();
    for (const line of outLines(r.stdout)) {
      const m = /^mv:(\d+):(ok|missing|fail)(?::(.*))?$/.exec(line);
      if (!m) continue;
      const status = m[2];
      byIndex.set(
        Number(m[1]),
        status === 'ok'
          ? { ok: true }
          : { ok: false, reason: status === 'missing' ? 'missing' : (m[3] ?? '').trim() || 'failed' },
      );
    }
    return moves.map((m, i) => ({
      from: m.from,
      to: m.to,
      ...(byIndex.get(i) ?? { ok: false, reason: 'no answer from the server' }),
    }));
  }

  async readMarker(): Promise<string | null> {
    return parseMarker((await this.exec(`M="$R/${MARKER_FILE}"\n${PRINT_MARKER}`)).stdout);
  }

  async claimMarker(pairId: string): Promise<string> {
    // ln fails if another client's marker is there (link(2) never replaces);
    // where the file system has no hard links, mv -f if there is still none.
    const tmp = `.${randomBytes(6).toString('hex')}.tmp`;
    const r = await this.exec(
      `${REQUIRE_ROOT}
M="$R/${MARKER_FILE}"; T="$M${tmp}"
mkdir -p -- "$R/${META_DIR}" && printf '%s\\n' ${shQuote(pairId)} > "$T" || exit 1
ln -- "$T" "$M" 2>/dev/null || [ -f "$M" ] || mv -f -- "$T" "$M" || exit 1
rm -f -- "$T"
${PRINT_MARKER}`,
    );
    const now = parseMarker(r.stdout);
    if (!now)
      throw new LipsyncError(
        'remote-missing',
        `Could not write the lipsync marker in ${this.remote.path} on the server.`,
        {
          fix: 'Check that the folder is writable by your ssh user and that the disk is not full, then retry.',
        },
      );
    return now;
  }

  async lock(owner: string, ttlMs: number): Promise<LockResult> {
    const o = checkOwner(owner);
    const ttlSec = Math.max(1, Math.ceil(checkTtl(ttlMs) / 1000));
    const aside = join(this.remote.path, `${META_DIR}/lock.stale.${randomBytes(8).toString('hex')}`);
    const r = await this.exec(
      `${REQUIRE_ROOT}${META_CHECK}
O=${shQuote(o)}; TTL=${ttlSec}; A=${shQuote(aside)}
${LOCK_FUNCTIONS}
mkdir -p -- "$M" || exit 1
if lipsync_take; then printf '${OUT}lock:acquired\\n'; exit 0; fi
if lipsync_stale; then
  S=; lipsync_break; broke=$?
  if lipsync_take; then
    if [ "$broke" -eq 0 ]; then printf '${OUT}lock:broke\\n${OUT}holder:%s' "$S"; else printf '${OUT}lock:acquired\\n'; fi
    exit 0
  fi
fi
printf '${OUT}lock:held\\n${OUT}holder:'
cat -- "$L/owner" 2>/dev/null
exit 0`,
    );
    const { status, holder } = lockAnswer(r.stdout);
    if (status === 'acquired') return { acquired: true };
    if (status === 'broke') return { acquired: true, brokeStale: holder };
    if (status === 'held') return { acquired: false, holder };
    throw new LipsyncError('unknown', `Unexpected answer from ${this.remote.host} while taking the lock.`, {
      detail: r.stdout.slice(-2000),
    });
  }

  async refreshLock(owner: string): Promise<boolean> {
    const o = checkOwner(owner);
    const r = await this.exec(
      `O=${shQuote(o)}; L="$R/${LOCK_DIR}"
if c=$(cat -- "$L/owner" 2>/dev/null) && [ "$c" = "$O" ] && touch -c -- "$L/owner" 2>/dev/null; then
  printf '${OUT}refresh:ok\\n'
else
  printf '${OUT}refresh:lost\\n'
fi`,
    );
    return outLines(r.stdout).includes('refresh:ok');
  }

  async unlock(owner: string): Promise<boolean> {
    const o = checkOwner(owner);
    const aside = join(this.remote.path, `${META_DIR}/lock.released.${randomBytes(8).toString('hex')}`);
    const r = await this.exec(
      `O=${shQuote(o)}; L="$R/${LOCK_DIR}"; A=${shQuote(aside)}
if c=$(cat -- "$L/owner" 2>/dev/null) && [ "$c" = "$O" ] && mv -- "$L" "$A" 2>/dev/null; then
  rm -rf -- "$A"
  printf '${OUT}unlock:ok\\n'
else
  printf '${OUT}unlock:no\\n'
fi`,
    );
    return outLines(r.stdout).includes('unlock:ok');
  }

  async purgeTrash(olderThanDays: number, now?: Date): Promise<number> {
    const cutoff = trashCutoff(olderThanDays, now).replace(/-/g, '');
    const r = await this.exec(
      `${REQUIRE_ROOT}${META_CHECK}
T="$R/${TRASH_DIR}"; C=${cutoff}; n=0
I="$R/${INCOMING_DIR}"
if [ -d "$I" ]; then find "$I" -mindepth 1 -maxdepth 1 -mtime +${INCOMING_STALE_DAYS - 1} -exec rm -rf -- {} + 2>/dev/null; fi
if [ -d "$T" ]; then
  for d in "$T"/*; do
    name=\${d##*/}
    case $name in [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ;; *) continue ;; esac
    y=\${name%%-*}; rest=\${name#*-}; m=\${rest%%-*}; dd=\${rest#*-}
    if [ "$y$m$dd" -lt "$C" ] && [ -d "$d" ] && [ ! -L "$d" ] && rm -rf -- "$d"; then n=$((n + 1)); fi
  done
fi
printf '${OUT}purged:%s\\n' "$n"`,
    );
    const line = outLines(r.stdout).find((l) => l.startsWith('purged:'));
    const n = line === undefined ? NaN : Number(line.slice('purged:'.length));
    if (!Number.isInteger(n)) {
      throw new LipsyncError('unknown', `Unexpected answer from ${this.remote.host} while emptying the trash.`, {
        detail: r.stdout.slice(-2000),
      });
    }
    return n;
  }

  async close(): Promise<void> {
    await closeMaster(this.remote, this.ssh);
  }
}

/** Parses the lock script's answer: `lock:STATUS` then, for held/broke, `holder:` and the owner text to the end. */
function lockAnswer(stdout: string): { status: string | undefined; holder: string } {
  const at = stdout.indexOf(`${OUT}holder:`);
  const head = at === -1 ? stdout : stdout.slice(0, at);
  const status = outLines(head)
    .find((l) => l.startsWith('lock:'))
    ?.slice('lock:'.length)
    .trim();
  const holder = at === -1 ? '' : stdout.slice(at + `${OUT}holder:`.length).replace(/\n+$/, '');
  return { status, holder };
}
