/**
 * Pure comparisons the cycle makes: a server state against the base, what landed after
 * a push against what was sent, the mass-delete threshold, whether the next chunk may be
 * decided while this one is acted on, and N5's holding back. No I/O.
 */
import type { Entry, LocalStat, RemoteStat } from '../types.js';
import type { DirtySnapshot } from '../dirty.js';
import { ACTIONS, type Decision } from '../reconcile.js';
import type { Decided } from './context.js';

const sec = (ns: bigint): bigint => ns / 1_000_000_000n;

/**
 * Remote times come with nanoseconds from GNU find, in whole seconds from rsync's
 * listing: compare exactly when both have a fraction, else to the second.
 */
export function sameRemoteTime(a: bigint, b: bigint): boolean {
  if (a % 1_000_000_000n === 0n || b % 1_000_000_000n === 0n) return sec(a) === sec(b);
  return a === b;
}

/** Did the server's side change since the base? (Times: see sameRemoteTime.) */
export function remoteChanged(r: RemoteStat | null, b: Entry): boolean {
  if (!r) return true;
  if (r.kind !== b.kind) return true;
  if (r.kind === 'symlink') return r.target !== b.target;
  if (r.kind === 'dir') return r.mode !== (b.remoteMode ?? b.mode);
  if (b.remoteSize === null || b.remoteMtimeNs === null) return true;
  if (r.size !== b.remoteSize || !sameRemoteTime(r.mtimeNs, b.remoteMtimeNs)) return true;
  return (r.mode & 0o111) !== (b.mode & 0o111);
}

/** Does the server's state after a push show what was sent (kind, size, mtime, symlink target)? */
export function landedAsSent(l: LocalStat, r: RemoteStat): boolean {
  if (l.kind !== r.kind) return false;
  if (l.kind === 'symlink') return l.target === r.target;
  if (l.kind === 'dir') return true;
  return l.size === r.size && sameRemoteTime(l.mtimeNs, r.mtimeNs);
}

/**
 * Whether the server's file after a push is a snapshot rsync read of this client's file
 * while it changed (rule W3). rsync lists a file (size, mtime) before it reads it, and the
 * receiver gets the bytes as read under the LISTED mtime: a file that grew in between lands
 * with more bytes than the listed size rsync reports (`sentSize`). So it is this client's
 * own when its mtime lies between the file's mtime when decided and its mtime now (to the
 * second) and it is no larger than the file here has been (decided, listed, now).
 */
export function ownSnapshot(before: LocalStat, now: LocalStat, r: RemoteStat, sentSize: number | undefined): boolean {
  if (before.kind !== 'file' || now.kind !== 'file' || r.kind !== 'file') return false;
  if (r.size > Math.max(before.size, now.size, sentSize ?? 0)) return false;
  const t = sec(r.mtimeNs);
  return t >= sec(before.mtimeNs) && t <= sec(now.mtimeNs);
}

/** An rsync filter pattern matching exactly the path `rel` from the transfer's root. */
export function anchoredRsyncPattern(rel: string): string {
  // Backslashes escape only in a pattern with a wildcard: escape all four, or none.
  return /[*?[]/.test(rel) ? `/${rel.replace(/[*?[\\]/g, '\\$&')}` : `/${rel}`;
}

/** The mass-delete threshold (docs/sync-semantics.md): more than half of the files, or more than 1,000; never one or two. */
export function tooManyDeletions(deletions: number, files: number): boolean {
  return deletions > 2 && (deletions > 1000 || deletions > files / 2);
}

/** "N path(s)" in a snapshot of changes: trees, names and whole directories each count one. */
export function sizeOf(snap: DirtySnapshot): string {
  const n = snap.trees.length + snap.dirs.reduce((a, [, names]) => a + (names === 'all' ? 1 : names.length), 0);
  return `${n} path${n === 1 ? '' : 's'}`;
}

/**
 * Whether acting on `decided` only creates or updates its own paths, keeping each one's
 * kind (ACTIONS' `overlap` column): no deletion, no conflict copy (a rename), no kind
 * change (a file replacing a folder removes what is below it), no forgetting of base
 * entries. Only then may the next chunk (other paths, possibly below these) be decided
 * before this one is done.
 */
export function overlapSafe(decided: readonly Pick<Decided, 'local' | 'remote' | 'decision'>[]): boolean {
  return decided.every((d) => {
    const overlap = ACTIONS[d.decision.action].overlap;
    if (overlap !== 'same-kind') return overlap === 'yes';
    const [from, onto] = ACTIONS[d.decision.action].lane === 'push' ? [d.local, d.remote] : [d.remote, d.local];
    return from !== null && (onto === null || onto.kind === from.kind);
  });
}

/**
 * N5 (docs/sync-semantics.md): `decision` for a path below `parent`, a symlink or a file
 * on one side. Nothing that transfers, renames or deletes is done through it (rsync's
 * sender would read through a symlinked parent, an older receiver write through it);
 * forgetting the base of a path gone on both sides is kept.
 */
export function heldBack(decision: Decision, parent: string): Decision {
  if (!ACTIONS[decision.action].changesSide) return decision;
  return {
    action: 'none',
    rule: 'N5',
    why: `${parent} above it is a symlink or a file on one side: it is decided after that folder`,
  };
}
