/**
 * Operations on the remote root that rsync cannot do (probe, create, rename,
 * the pair marker, the lock, the trash purge): the interface, and remoteOps()
 * that picks the backend:
 * - ssh: ops-ssh.ts, ONE remote script per call through script.ts, a fixed
 *   POSIX sh script in which every path is shQuote()d (see ssh.ts for why the
 *   script travels on stdin);
 * - local: ops-local.ts, node:fs.
 * Failures (unreachable, auth, permissions) become LipsyncError (errors.ts).
 *
 * The remote LOCK serializes clients writing one server folder: the directory
 * ROOT/.lipsync/lock, created with a plain (non -p) mkdir, which is atomic on
 * POSIX file systems (exactly one of several racing mkdirs succeeds; on NFS
 * too, v3 and later). Its `owner` file says who holds it; the holder touches
 * that file now and then (refreshLock) so the others can tell a live lock
 * from one whose holder died (older than the TTL: broken). Ages are computed
 * with the SERVER's clock (file mtimes are set by it and compared with its
 * `date +%s`), so a client clock that is off does not matter; see lock() below
 * and lock.ts, which holds both backends' halves of it.
 */

import type { RemoteSpec, SshOptions } from '../types.js';
import type { LockResult } from './lock.js';
import { LocalOps } from './ops-local.js';
import { SshOps } from './ops-ssh.js';

export type { LockResult } from './lock.js';
export { purgeLocalTrash } from './ops-local.js';

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
   *
   * Whatever the answer, it first does what prepareMeta does (the root checked, the
   * meta dirs made; `metaReady` says whether that worked): a push right after the lock
   * is taken needs no script of its own for that (one round trip less per change; see
   * PairLock.metaFresh).
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

export function remoteOps(remote: RemoteSpec, ssh: SshOptions): RemoteOps {
  return remote.kind === 'local' ? new LocalOps(remote.path) : new SshOps(remote, ssh);
}
