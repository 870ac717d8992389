/**
 * The local backend of RemoteOps (ops.ts): a remote root on a mounted disk, with
 * node:fs. Each rename walks the folders with O_NOFOLLOW (safe-fs.ts). Also the
 * upkeep of this computer's own `.lipsync/` (prepareLocalMeta, purgeLocalTrash).
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
  writeFile,
} from 'node:fs/promises';
import { resolve } from 'node:path';
import { LipsyncError, fsError, localMissing, localNotDir, metaNotDir } from '../errors.js';
import { INCOMING_DIR, MARKER_FILE, META_DIR, PARTIAL_DIR, TRASH_DIR } from '../../../shared/layout.js';
import { LocalAncestors, SymlinkedParentError, existsInRoot, renameInRoot } from '../safe-fs.js';
import type { MoveResult, RemoteOps, RootState } from './ops.js';
import { LocalLock, checkOwner, checkTtl, type LockResult } from './lock.js';
import { DAY_DIR, INCOMING_STALE_DAYS, checkIncomingPrefix, trashCutoff } from './meta.js';
import { normalizeRelPath } from './paths.js';
import { rsyncVersion as localRsyncVersion } from './rsync-version.js';

function join(root: string, rel: string): string {
  return root === '/' ? `/${rel}` : `${root}/${rel}`;
}

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
    if (code === 'ENOENT') throw localMissing(localRoot, (e as Error).message);
    if (code === 'ENOTDIR') throw localNotDir(localRoot, (e as Error).message);
    throw fsError(e, localRoot, 'open');
  }
  if (!st.isDirectory()) throw localNotDir(localRoot);
}

/**
 * mkdir -p LOCALROOT/.lipsync/{partial,trash} (what a pull writes into);
 * the local root itself must exist ('local-missing' otherwise: never created).
 */
export async function prepareLocalMeta(localRoot: string): Promise<void> {
  const root = resolve(localRoot);
  await requireLocalRoot(root);
  for (const d of [PARTIAL_DIR, TRASH_DIR]) {
    try {
      await mkdir(join(root, d), { recursive: true });
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

/** The operations on a local remote root (a mounted disk), with node:fs. */
export class LocalOps implements RemoteOps {
  private readonly lockDir: LocalLock;
  constructor(private readonly root: string) {
    this.lockDir = new LocalLock(root);
  }

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
    for (const rel of [META_DIR, PARTIAL_DIR, TRASH_DIR, INCOMING_DIR, ...days.map((d) => `${TRASH_DIR}/${d}`)]) {
      const st = await lstat(join(this.root, rel)).catch(() => null);
      const day = rel.startsWith(`${TRASH_DIR}/`);
      if (st && (st.isSymbolicLink() || (!day && !st.isDirectory()))) throw metaNotDir(join(this.root, rel), null);
    }
  }

  async prepareMeta(leftoverPrefix?: string): Promise<void> {
    await this.requireRoot();
    await this.checkMeta();
    await this.makeMetaDirs();
    if (leftoverPrefix !== undefined) await this.clearIncoming(leftoverPrefix);
  }

  private async makeMetaDirs(): Promise<void> {
    for (const d of [PARTIAL_DIR, TRASH_DIR, INCOMING_DIR]) {
      try {
        await mkdir(join(this.root, d), { recursive: true });
      } catch (e) {
        throw fsError(e, join(this.root, META_DIR), 'create');
      }
    }
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

  async lock(owner: string, ttlMs: number): Promise<LockResult> {
    checkOwner(owner);
    checkTtl(ttlMs);
    await this.requireRoot();
    await this.checkMeta(); // the lock is never made through a planted link
    const metaReady = await this.makeMetaDirs().then(
      () => true,
      () => false, // prepareMeta, before the transfer, reports it
    );
    return { ...(await this.lockDir.lock(owner, ttlMs)), metaReady };
  }

  refreshLock(owner: string): Promise<boolean> {
    return this.lockDir.refresh(owner);
  }

  unlock(owner: string): Promise<boolean> {
    return this.lockDir.unlock(owner);
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
