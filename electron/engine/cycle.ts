/**
 * One sync cycle of a pair: collect the paths that may have changed on either
 * side, decide each with the reconciler (reconcile.ts, the one table of rules),
 * then act in bounded batches: remote moves, one rsync push, one rsync pull,
 * conflict copies. The base (state database) follows each step only after it
 * succeeded, so a crash at any instant is recovered by the next cycle.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Direction } from '../../shared/settings.js';
import type { ErrorInfo } from '../../shared/errors.js';
import type { InitialSyncMode } from '../../shared/api.js';
import type {
  Entry,
  Excluder,
  LocalStat,
  RemoteCapabilities,
  RemoteEntry,
  RemoteSpec,
  RemoteStat,
  SshOptions,
} from './types.js';
import type { StateDb } from './state/db.js';
import type { DirtySnapshot } from './dirty.js';
import { DirtySet, ancestorIn, isUnder, isUnderAny, joinPath, parentOf } from './dirty.js';
import { localChangedSince } from './since.js';
import { listChangedSince } from './remote/watch.js';
import { compareDir, comparePaths, hashFile, isRacy, sameAsEntry, type ScanChange } from './scan.js';
import { reconcile, conflictCopyName, type Decision, type SideState } from './reconcile.js';
import {
  rsyncPull,
  rsyncPush,
  rsyncPushTrees,
  rsyncSameContent,
  type PushOptions,
  type PushResult,
} from './remote/rsync.js';
import { INCOMING_DIR } from '../../shared/layout.js';
import { isIgnoredPath } from './excludes.js';
import { listRemote, type ListOptions } from './remote/list.js';
import { statRemote } from './remote/stat.js';
import type { RemoteOps } from './remote/ops.js';
import { LipsyncError } from './errors.js';
import type { ActivityLog } from './log.js';
import { traced } from './trace.js';
import { newTrashDir } from './versions.js';
import {
  LocalAncestors,
  SymlinkedParentError,
  existsInRoot,
  lstatInRoot,
  renameInRoot,
  rmdirInRoot,
  waitsForParent,
} from './safe-fs.js';

/**
 * New folders sent whole (Cycle.pushNewTrees) go in at most this many rsync runs, so
 * what arrived in one is listed and recorded while the next is sent.
 */
export const TREE_GROUPS = 16;
/** Rows recorded at a time after a folder push (see recordTrees). */
const RECORD_PAGE = 1000;

/** Candidates decided per step: bounds memory and the size of every rsync run. */
export const CHUNK = 5000;
/** How many more than CHUNK the last chunk may hold (see Cycle.takeChunk). */
export const CHUNK_SLACK = 500;

export interface CycleTotals {
  filesSent: number;
  filesReceived: number;
  deleted: number;
  renamed: number;
  conflicts: number;
  bytesSent: number;
  warnings: ErrorInfo[];
}

export const emptyTotals = (): CycleTotals => ({
  filesSent: 0,
  filesReceived: 0,
  deleted: 0,
  renamed: 0,
  conflicts: 0,
  bytesSent: 0,
  warnings: [],
});

export interface CycleContext {
  pair: string;
  db: StateDb;
  localRoot: string;
  remote: RemoteSpec;
  remoteLabel: string;
  ssh: SshOptions;
  ops: RemoteOps;
  caps: RemoteCapabilities;
  excluder: Excluder;
  direction: Direction;
  deviceName: string;
  bwLimitKBps: number;
  log: ActivityLog;
  totals: CycleTotals;
  /** Deletions allowed without asking (the user confirmed a mass delete). */
  massDeleteConfirmed: boolean;
  /** Throws when the cycle must stop before its next remote step (paused, stopping). */
  checkPaused: () => void;
  onProgress: (p: {
    filesDone: number;
    filesTotal: number;
    bytes: number;
    rateBps: number;
    bytesTotal?: number;
    currentFile?: string;
  }) => void;
  /**
   * The paths a push is about to write (null: the push and the stat after it are
   * done). The server watcher's reports of those writes are then not looked at
   * again: the stat after the push checks each of them instead.
   */
  expectEcho?: (paths: string[] | null) => void;
  /** Asks for `path` on the server to be looked at again in the next cycle. */
  requeueRemote?: (path: string) => void;
  /** Asks for `path` and everything below it to be looked at again in the next cycle. */
  requeueLocalTree: (path: string) => void;
  /**
   * Whether the file at `path` on that side is still being written (writing.ts): it is
   * neither decided nor sent until it is closed or quiet (it comes back as dirty then).
   */
  held?: (side: 'local' | 'remote', path: string) => boolean;
  /** The local files at `dir` or below it that are still being written (left out of a folder sent whole). */
  heldBelow?: (dir: string) => string[];
  /** A file that was due (no longer held) was decided: see WriteTracker.taken. */
  taken?: (path: string) => void;
  /** Serialises writers of one remote root; returns a release function. */
  withRemoteLock: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * The pair's initial-sync mode while it has never completed a sync (F1–F3 of
   * docs/sync-semantics.md); undefined (or 'merge') once it has.
   */
  initialSync?: InitialSyncMode;
  /**
   * True when the server's changes since the marker were listed already (poll
   * mode: the poll watcher's first poll uses the same marker), so a snapshot's
   * `since` needs no listing of its own.
   */
  remoteSincePolled?: boolean;
  /** The local clean-stop listing, already started (by the pair's start) for this cycle's `since`. */
  localSincePrefetch?: Promise<DirtySnapshot | null>;
  /** The server's clean-stop listing, made by its watcher's first walk, for this cycle's `since`. */
  remoteSincePrefetch?: Promise<DirtySnapshot | null>;
  /**
   * This client's prefix for staging folders in the server's .lipsync/incoming (letters,
   * digits, '-', '_'); without one, new folders are sent path by path like everything else.
   */
  stagingPrefix?: string;
}

/** The pair is paused because a cycle would delete too much; `lipsync confirm` goes on. */
export class MassDeleteError extends LipsyncError {
  constructor(
    readonly deletions: number,
    readonly fileCount: number,
  ) {
    super(
      'cancelled',
      `This sync would delete ${deletions} of ${fileCount} files, so the pair was paused before deleting anything.`,
      {
        fix: 'If that is what you want, run `lipsync confirm PAIR`; otherwise restore the files (or mount the disk) and resume.',
      },
    );
  }
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

const toSide = (s: LocalStat | RemoteStat | Entry): SideState => ({
  kind: s.kind,
  size: s.size,
  mtimeNs: s.mtimeNs,
  mode: s.mode,
  target: s.target,
});

/** The base as a side: what both sides looked like after the last sync. */
const baseSide = (e: Entry): SideState => ({
  kind: e.kind,
  size: e.size,
  mtimeNs: e.mtimeNs,
  mode: e.mode,
  target: e.target,
});

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

export class Cycle {
  private readonly db: StateDb;
  private readonly deferredDirs: { path: string; side: 'local' | 'remote' }[] = [];
  /** The clean-stop listings, started together by collect(). */
  private localSince: Promise<DirtySnapshot | null> | null = null;
  private remoteSince: Promise<DirtySnapshot | null> | null = null;
  /** What the clean-stop shortcut looked at, for the log ("12 paths here", "everything on the server"). */
  private readonly sinceReport: string[] = [];
  /** Candidates that came from local changes (they will most likely be pushed). */
  private localCandidates = 0;

  constructor(private readonly c: CycleContext) {
    this.db = c.db;
  }

  // ================================================================ collecting candidates

  async collect(local: DirtySnapshot | null, remote: DirtySnapshot | null): Promise<void> {
    this.db.candClear();
    // After a clean stop both sides are listed at once (each is a walk by find).
    if (local?.since != null && !local.full)
      this.localSince = this.c.localSincePrefetch ?? localChangedSince(this.c.localRoot, Number(local.since));
    const remoteSinceId = remote?.since;
    if (remoteSinceId != null && !remote?.full && this.c.direction !== 'send-only' && !this.c.remoteSincePolled)
      this.remoteSince =
        this.c.remoteSincePrefetch ?? traced('remote changed since', () => this.remoteChangedSince(remoteSinceId));
    // Not awaited yet: a failure is seen where it is used.
    this.localSince?.catch(() => undefined);
    this.remoteSince?.catch(() => undefined);
    if (local) await traced('collect local', () => this.collectLocal(local));
    if (remote && this.c.direction !== 'send-only') await traced('collect remote', () => this.collectRemote(remote));
    if (this.sinceReport.length) {
      this.c.log.write({
        pair: this.c.pair,
        level: 'info',
        event: 'state',
        msg: `started after a clean stop: looked at what changed since (${this.sinceReport.join(', ')}), not at every file`,
      });
    }
  }

  private async collectLocal(snap: DirtySnapshot): Promise<void> {
    if (snap.full) return this.scanLocalTree('');
    if (snap.since !== null) {
      // After a clean stop: only what find says changed since (else everything).
      const changed = await (this.localSince ?? localChangedSince(this.c.localRoot, Number(snap.since)));
      this.localSince = null;
      this.sinceReport.push(changed && !changed.full ? `${sizeOf(changed)} here` : 'everything here');
      if (!changed || changed.full) return this.scanLocalTree('');
      await this.collectLocal(changed);
    }
    // A directory compared inside a tree walk of this snapshot needs no second look.
    const walked = new Set<string>();
    for (const t of snap.trees) if (await this.checkLocalPath(t, true)) walked.add(t);
    for (const [dir, names] of snap.dirs) {
      if (isUnderAny(dir, walked) || isUnderAny(dir, this.newTreeSet)) continue;
      if (names === 'all') {
        if (!this.c.excluder.ignores(dir, true)) await this.scanLocalDir(dir, true, true);
      } else {
        for (const n of names) await this.checkLocalPath(joinPath(dir, n));
      }
    }
  }

  private async scanLocalTree(start: string): Promise<void> {
    const stack = [start];
    while (stack.length) {
      const dir = stack.pop()!;
      // The start's folders above are checked (N5); below it, each folder was found by a walk.
      for (const d of await this.scanLocalDir(dir, false, dir === start)) stack.push(d);
    }
  }

  /** Compares one local directory with the base; returns subdirectories to descend into. */
  private async scanLocalDir(dir: string, recurseNew: boolean, checkAncestors = false): Promise<string[]> {
    const { changes, subdirs, skipped } = await compareDir(
      this.c.localRoot,
      this.db,
      dir,
      this.c.excluder,
      checkAncestors,
    );
    for (const s of skipped)
      this.warn({ kind: 'permission-denied', message: `Skipped ${s.path}: ${s.reason}.`, files: [s.path] });
    const moved = new Set<string>();
    const outer = this.candBatch; // a move found below may scan (and batch) a tree of its own
    this.candBatch = [];
    try {
      for (const ch of changes) if (await this.localChange(ch)) moved.add(ch.path);
    } finally {
      const batch = this.candBatch;
      this.candBatch = outer;
      this.db.candAdd(batch);
    }
    if (recurseNew) {
      for (const ch of changes) {
        if (ch.type !== 'deleted' && ch.stat.kind === 'dir' && !moved.has(ch.path)) await this.scanLocalTree(ch.path);
      }
      return [];
    }
    return subdirs.filter((d) => !moved.has(d));
  }

  /**
   * Checks one local path against the base. A directory new to the base is walked whole;
   * with `tree`, any directory is (its contents may have changed: moved in, or a move
   * applied on the server that leaves edits below it to find). Returns whether the path's
   * tree was walked, so the caller can skip directories below it.
   */
  private async checkLocalPath(path: string, tree = false): Promise<boolean> {
    const stat = this.lstatL(path);
    if (this.c.excluder.ignores(path, stat?.kind === 'dir')) return false;
    const entry = this.db.get(path);
    let walk = tree;
    if (!stat && entry) await this.localChange({ type: 'deleted', path, entry });
    else if (stat && !entry) {
      if (!(await this.localChange({ type: 'added', path, stat }))) walk = true;
      else if (this.newTreeSet.has(path)) return true; // sent whole later: nothing to look at below
    } else if (stat && entry && !(await this.localUnchanged(path, stat, entry))) {
      await this.localChange({ type: 'modified', path, stat, entry });
      if (entry.kind !== 'dir') walk = true;
    }
    if (!walk || stat?.kind !== 'dir') return false;
    await this.scanLocalTree(path);
    return true;
  }

  private async localUnchanged(path: string, stat: LocalStat, entry: Entry): Promise<boolean> {
    if (!sameAsEntry(stat, entry)) return false;
    if (stat.kind === 'file' && isRacy(stat, entry.syncedAtNs)) {
      return entry.hash !== null && (await hashFile(join(this.c.localRoot, path), stat.size)) === entry.hash;
    }
    return true;
  }

  /** Records one local change as a candidate; returns true when it was a move, done remotely already. */
  private async localChange(ch: ScanChange): Promise<boolean> {
    this.localCandidates++;
    if (ch.type === 'deleted') {
      this.addCandidate(ch.path);
      if (ch.entry.kind === 'dir') this.db.candAddDescendants(ch.path);
      return false;
    }
    if (ch.type === 'added' && this.c.direction !== 'receive-only' && this.baseHasEntries()) {
      const from = await this.localMovedFrom(ch.path, ch.stat);
      if (from !== null && (await this.moveRemote(from, ch.path, ch.stat))) return true;
    }
    // A new folder is sent whole (pushNewTrees), not walked here.
    if (ch.type === 'added' && ch.stat.kind === 'dir' && this.deferTree(ch.path)) return true;
    this.addCandidate(ch.path);
    return false;
  }

  // ================================================================ new folders, sent whole

  /** New local folders to send whole, each with everything below it (see pushNewTrees). */
  private readonly newTrees: string[] = [];
  private readonly newTreeSet = new Set<string>();
  /** Set while a folder that could not be sent whole is walked path by path. */
  private treesOff = false;

  /**
   * Takes the new local folder `path` (no base entry) for pushNewTrees, instead of
   * walking it now: when this pair sends, has a staging prefix, its excludes have an
   * rsync equivalent, and the base knows nothing below the folder.
   */
  private deferTree(path: string): boolean {
    if (this.treesOff || this.c.direction === 'receive-only' || !this.c.stagingPrefix) return false;
    if (!this.c.excluder.rsyncRules?.()) return false;
    if (this.baseHasEntries() && this.db.hasDescendants(path)) return false;
    this.newTrees.push(path);
    this.newTreeSet.add(path);
    return true;
  }

  /**
   * Sends the new local folders found by collect, each whole (rules T1 and T2 of
   * docs/sync-semantics.md, "New folders"): recursive rsync runs (TREE_GROUPS at most) into a
   * staging folder in the server's .lipsync/incoming, a listing of what arrived there,
   * then, under the server lock, each folder still absent on the server is moved into
   * place with one rename, and the base records what arrived. Nothing on the server is
   * replaced or deleted, and a folder appears there only once complete. A folder that
   * cannot go this way (it exists on the server by now, its parent does not, something
   * excluded or unnamable arrived, the rename or the rsync run failed) is walked and
   * sent path by path like every other change; its staged copy is removed.
   */
  private async pushNewTrees(): Promise<void> {
    const roots = this.newTrees.splice(0).sort(comparePaths);
    this.newTreeSet.clear();
    if (!roots.length) return;
    const fallback = await this.sendTrees(roots);
    if (!fallback.length) return;
    this.treesOff = true;
    try {
      for (const t of fallback.sort(comparePaths)) {
        this.db.candAdd([t]);
        await this.scanLocalTree(t);
      }
    } finally {
      this.treesOff = false;
    }
  }

  /**
   * pushNewTrees' transfers, renames and records; returns the folders left to send path
   * by path. The folders go in up to TREE_GROUPS rsync runs, one after the other, and
   * what arrived in one run is listed, moved and recorded while the next one is sent.
   */
  private async sendTrees(roots: string[]): Promise<string[]> {
    const rules = this.c.excluder.rsyncRules?.() ?? null;
    const prefix = this.c.stagingPrefix;
    if (!rules || !prefix) return roots;
    this.c.checkPaused();
    // Each folder must be absent on the server and its parent a folder there.
    const parents = [...new Set(roots.map(parentOf).filter((p) => p !== ''))];
    const before = await traced(`stat ${roots.length + parents.length} folders on the server`, () =>
      statRemote(this.c.remote, this.c.ssh, this.rootPath(), [...roots, ...parents], this.c.caps),
    );
    const parentOk = new Map(parents.map((p, i) => [p, before[roots.length + i]?.kind === 'dir']));
    const fallback: string[] = [];
    const send: string[] = [];
    roots.forEach((r, i) => {
      const p = parentOf(r);
      if (before[i] || (p !== '' && !parentOk.get(p))) fallback.push(r);
      else send.push(r);
    });

    const per = Math.ceil(send.length / TREE_GROUPS);
    let finishing: Promise<void> = Promise.resolve();
    let failure: unknown = null;
    for (let at = 0; at < send.length && failure === null; at += per) {
      const group = send.slice(at, at + per);
      const staging = `${INCOMING_DIR}/${prefix}-${randomBytes(6).toString('hex')}`;
      const clear = () => this.c.ops.clearIncoming(staging.slice(INCOMING_DIR.length + 1)).catch(() => undefined);
      let res: PushResult;
      try {
        this.c.checkPaused();
        res = await traced(`rsync push ${group.length} new folders`, () =>
          rsyncPushTrees({
            localRoot: this.c.localRoot,
            remote: this.c.remote,
            ssh: this.c.ssh,
            paths: group,
            stagingDir: staging,
            // Files still being written are left out; each is sent once closed (rule W1).
            excludes: [...rules, ...group.flatMap((g) => this.c.heldBelow?.(g) ?? []).map(anchoredRsyncPattern)],
            bwLimitKBps: this.c.bwLimitKBps || undefined,
            // The total grows as rsync walks the folders (no walk of ours came first).
            onProgress: (p) =>
              this.c.onProgress({
                filesDone: p.filesDone,
                filesTotal: Math.max(p.filesDone, p.filesKnown ?? 0),
                bytes: p.bytes,
                rateBps: p.rateBps,
              }),
          }),
        );
      } catch (e) {
        failure = e;
        await clear();
        break;
      }
      finishing = finishing
        .then(async () => {
          if (failure !== null) fallback.push(...group);
          else fallback.push(...(await this.finishTrees(group, staging, res)));
        })
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(clear);
    }
    await finishing;
    if (failure !== null) throw failure;
    return fallback;
  }

  /**
   * After one rsync run of pushNewTrees into `staging`: lists what arrived (while the
   * server lock is being taken), moves each folder into place under the lock (when still
   * absent there) and records it.
   * Returns the folders left to send path by path.
   */
  private async finishTrees(group: string[], staging: string, res: PushResult): Promise<string[]> {
    let failed: Set<string>;
    try {
      failed = this.failedFiles(res);
    } catch {
      // The run failed as a whole: path by path, which reports the error as usual.
      return group;
    }
    const fallback: string[] = [];
    // What arrived, into the scratch table; a folder holding anything the excludes
    // match (made after the run began) or a name that is not UTF-8 goes path by path.
    // The server lock is taken meanwhile (the listing reads only our staging folder).
    this.c.checkPaused();
    const groupSet = new Set(group);
    const bad = new Set<string>();
    const listed = traced('list the staged folders', () =>
      this.listIntoScratch(join(this.rootPath(), staging), '', { recursive: true }, (e) => {
        const root = ancestorIn(e.path, groupSet);
        if (root === null) return false; // a parent made in the staging folder
        if (e.path.includes('\uFFFD') || isIgnoredPath(e.path, e.kind === 'dir', this.c.excluder)) bad.add(root);
        return true;
      }),
    ).then(
      () => true,
      () => false,
    );

    // Into place, under the lock, each folder that is still absent on the server.
    const moved = new Set<string>();
    try {
      await this.c.withRemoteLock(async () => {
        if (!(await listed)) {
          fallback.push(...group);
          return;
        }
        const send = group.filter((r) => {
          if (bad.has(r)) fallback.push(r);
          return !bad.has(r);
        });
        if (!send.length) return;
        this.c.expectEcho?.(send);
        const now = await statRemote(this.c.remote, this.c.ssh, this.rootPath(), send, this.c.caps);
        const free = send.filter((r, i) => {
          if (now[i]) fallback.push(r);
          return !now[i];
        });
        if (!free.length) return;
        const results = await traced(`move ${free.length} new folders into place`, () =>
          this.c.ops.rename(
            free.map((r) => ({ from: `${staging}/${r}`, to: r })),
            newTrashDir(),
          ),
        );
        results.forEach((m, i) => {
          if (m.ok) moved.add(free[i]!);
          else fallback.push(free[i]!);
        });
      });
      if (moved.size) await traced('record the new folders', () => this.recordTrees(moved, res, failed));
    } finally {
      await listed; // the scratch table is not read by another listing while this one runs
      this.c.expectEcho?.(null);
    }
    return fallback;
  }

  /**
   * The base of every path that arrived in the moved folders (the rscan rows): the
   * local state when it still is what arrived; else what arrived, for both sides, so
   * the local change since is found and sent next (the path is looked at again).
   * Files rsync could not send become candidates of this cycle.
   */
  private async recordTrees(moved: Set<string>, res: PushResult, failed: Set<string>): Promise<void> {
    const sent: string[] = [];
    let files = 0;
    let after = '';
    for (;;) {
      // Small pages, and a turn of the event loop between them: the next rsync run's
      // output is read meanwhile (a full pipe would stall it).
      const page = this.db.rscanPage(after, RECORD_PAGE);
      if (!page.length) break;
      await new Promise((r) => setImmediate(r));
      after = page[page.length - 1]!.path;
      const syncedAtNs = nowNs();
      const rows: Entry[] = [];
      const view = new LocalAncestors(this.c.localRoot); // the folders above, once per page
      for (const r of page) {
        if (ancestorIn(r.path, moved) === null) continue;
        const l = view.lstat(r.path);
        if (
          l &&
          l.kind === r.kind &&
          landedAsSent(l, r) &&
          (l.kind === 'dir' || (l.mode & 0o111) === (r.mode & 0o111))
        ) {
          rows.push(this.entryFor(r.path, l, r, await this.racyHash(r.path, l, syncedAtNs), syncedAtNs));
        } else {
          rows.push({
            ...r,
            path: r.path,
            ino: l?.ino ?? 0n,
            hash: null,
            syncedAtNs,
            remoteSize: r.size,
            remoteMtimeNs: r.mtimeNs,
            remoteIno: r.ino,
            remoteMode: r.mode,
          });
          this.c.requeueLocalTree(r.path);
        }
        if (r.kind !== 'dir') {
          files++;
          if (sent.length < 1000) sent.push(r.path);
        }
      }
      this.db.upsert(rows);
    }
    const retry = [...failed].filter((f) => ancestorIn(f, moved) !== null);
    if (retry.length) this.db.candAdd(retry);
    this.c.totals.filesSent += files;
    this.c.totals.bytesSent += res.literalBytes;
    if (files) {
      this.c.log.write({
        pair: this.c.pair,
        level: 'info',
        event: 'push',
        msg: `sent ${files} file${files === 1 ? '' : 's'} in ${moved.size} new folder${moved.size === 1 ? '' : 's'} (${res.literalBytes} bytes of data)`,
        paths: sent,
        bytes: res.literalBytes,
      });
    }
  }

  /** Candidates of one directory's scan are inserted together (see scanLocalDir). */
  private candBatch: string[] | null = null;

  private addCandidate(path: string): void {
    if (this.candBatch) this.candBatch.push(path);
    else this.db.candAdd([path]);
  }

  /** Whether the base has any entry (a move needs one; a first sync has none). Asked once per cycle. */
  private baseNonEmpty: boolean | null = null;

  private baseHasEntries(): boolean {
    this.baseNonEmpty ??= this.db.count() > 0;
    return this.baseNonEmpty;
  }

  /** A new local path whose inode the base knows at a path that is gone locally was moved there. */
  private async localMovedFrom(path: string, stat: LocalStat): Promise<string | null> {
    for (const cand of this.db.byInode(stat.ino)) {
      if (cand.path === path || cand.kind !== stat.kind || isUnder(path, cand.path)) continue;
      // A renamed file keeps its size and mtime; a new file that got a deleted one's inode
      // number does not (an edit with the move is then synced as a deletion and a creation).
      if (stat.kind === 'file' && (cand.size !== stat.size || cand.mtimeNs !== stat.mtimeNs)) continue;
      if (this.c.excluder.ignores(cand.path, cand.kind === 'dir')) continue;
      const now = this.lstatL(cand.path);
      if (now && now.ino === cand.ino) continue; // a hard link, not a move
      return cand.path;
    }
    return null;
  }

  /**
   * Applies a local move on the server, if the server still has the source as
   * the base knows it and nothing at the target. Returns false when it did not
   * (the paths are then synced as a deletion and a creation).
   */
  private async moveRemote(from: string, to: string, stat: LocalStat): Promise<boolean> {
    const base = this.db.get(from);
    if (!base) return false;
    const [rFrom, rTo] = await statRemote(this.c.remote, this.c.ssh, this.rootPath(), [from, to], this.c.caps);
    if (!rFrom || rTo || remoteChanged(rFrom, base)) return false;
    this.c.checkPaused();
    const results = await this.c.withRemoteLock(() => this.c.ops.rename([{ from, to }], newTrashDir()));
    if (!results[0]?.ok) return false;
    this.db.renameTree(from, to);
    this.c.totals.renamed++;
    this.c.log.write({
      pair: this.c.pair,
      level: 'info',
      event: 'rename',
      msg: `moved ${from} → ${to} on the server`,
      from,
      to,
    });
    // The moved path itself may have changed too (an edit around the move): decide it normally.
    const entry = this.db.get(to);
    if (!entry || !sameAsEntry(stat, entry)) this.db.candAdd([to]);
    if (stat.kind === 'dir') await this.scanLocalTree(to);
    return true;
  }

  /** lstat for decisions: absent when a folder above the path is not one (N5). */
  private lstatL(path: string): LocalStat | null {
    return lstatInRoot(this.c.localRoot, path);
  }

  private rootPath(): string {
    return this.c.remote.path;
  }

  private async collectRemote(snap: DirtySnapshot): Promise<void> {
    if (snap.full) {
      await this.scanRemote('', true);
      return;
    }
    if (snap.since !== null && !this.c.remoteSincePolled) {
      // After a clean stop: what changed on the server since our marker (else everything).
      const found = await (this.remoteSince ?? this.remoteChangedSince(snap.since));
      this.remoteSince = null;
      this.sinceReport.push(found ? `${sizeOf(found)} on the server` : 'everything on the server');
      if (!found) {
        await this.scanRemote('', true);
        return;
      }
      await this.collectRemote(found);
    }
    // A directory listed inside a tree of this snapshot needs no second listing.
    const walked = new Set<string>();
    for (const t of snap.trees) {
      if (await this.remoteMoveCheck(t)) continue;
      this.db.candAdd([t]);
      await this.scanRemote(t, true);
      walked.add(t);
    }
    for (const [dir, names] of snap.dirs) {
      if (names === 'all' && isUnderAny(dir, walked)) continue;
      if (names === 'all') {
        this.db.candAdd(dir === '' ? [] : [dir]);
        await this.scanRemote(dir, false);
      } else {
        const paths = names.map((n) => joinPath(dir, n)).filter((p) => !this.c.excluder.ignores(p, false));
        this.db.candAdd(paths);
        // A name the server's feed could not decode (not UTF-8): its folder's listing,
        // which reads the bytes, finds it and warns (N3).
        if (names.some((n) => n.includes('\uFFFD')) && !this.c.excluder.ignores(dir, true))
          await this.scanRemote(dir, false);
      }
    }
  }

  /** What changed on the server since the marker `markerId`; null when it must be compared whole. */
  private async remoteChangedSince(markerId: string): Promise<DirtySnapshot | null> {
    if (!this.c.caps.gnuFind) return null;
    const changed = new DirtySet();
    const r = await listChangedSince(this.c.remote, this.c.ssh, this.rootPath(), markerId, this.c.excluder, (b) => {
      for (const ch of b) {
        if (ch.isDir) changed.markDir(ch.path);
        changed.addPath(ch.path);
      }
    });
    const found = changed.take();
    return r.result === 'ok' && !found.full ? found : null;
  }

  /** Lists a remote subtree (or one directory) into the scratch table and adds what differs from the base. */
  private async scanRemote(start: string, recursive: boolean): Promise<void> {
    try {
      await this.listIntoScratch(this.rootPath(), start, {
        recursive,
        excluder: this.c.excluder,
        onBadName: (path) => this.warn(notUtf8OnServer(path)),
      });
    } catch (e) {
      if (!(await this.vanishedRemoteFolder(start, e))) throw e;
      // A folder named by a hint (an event, a listing) that is gone by now: what the base
      // holds below it becomes a candidate, decided like any other.
      this.db.rscanClear();
    }
    this.db.candFromRemoteScan(start, recursive);
  }

  /**
   * Streams a listing of `start` below the server folder `root` into the scratch table
   * (emptied first), in batches; entries for which `keep` says false are left out.
   */
  private async listIntoScratch(
    root: string,
    start: string,
    opts: ListOptions & { recursive: boolean },
    keep: (e: RemoteEntry) => boolean = () => true,
  ): Promise<void> {
    this.db.rscanClear();
    let buf: RemoteEntry[] = [];
    for await (const e of listRemote(this.c.remote, this.c.ssh, root, start, this.c.caps, opts)) {
      if (!keep(e)) continue;
      buf.push(e);
      if (buf.length >= 5000) {
        this.db.rscanInsert(buf);
        buf = [];
      }
    }
    this.db.rscanInsert(buf);
  }

  /** Did listing `start` fail because that folder (not the root) is no longer a folder on the server? */
  private async vanishedRemoteFolder(start: string, e: unknown): Promise<boolean> {
    if (start === '' || !(e instanceof LipsyncError)) return false;
    if (e.kind !== 'remote-missing' && e.kind !== 'remote-not-dir') return false;
    // Throws when the root itself is gone: that is never read as "everything deleted".
    const [st] = await statRemote(this.c.remote, this.c.ssh, this.rootPath(), [start], this.c.caps);
    return st?.kind !== 'dir';
  }

  /**
   * A new directory on the server whose inode the base knows at a path that is
   * gone there was moved: move it locally too instead of fetching it again.
   */
  private async remoteMoveCheck(to: string): Promise<boolean> {
    if (!this.c.caps.gnuFind || this.c.direction === 'send-only') return false;
    const [rTo] = await statRemote(this.c.remote, this.c.ssh, this.rootPath(), [to], this.c.caps);
    if (!rTo || rTo.ino === null) return false;
    for (const cand of this.db.byRemoteInode(rTo.ino)) {
      if (cand.path === to || cand.kind !== rTo.kind || isUnder(to, cand.path)) continue;
      const [rFrom] = await statRemote(this.c.remote, this.c.ssh, this.rootPath(), [cand.path], this.c.caps);
      if (rFrom && rFrom.ino === rTo.ino) continue; // hard link
      const lFrom = this.lstatL(cand.path);
      const lTo = this.lstatL(to);
      if (!lFrom || lTo || !sameAsEntry(lFrom, cand)) return false;
      this.c.checkPaused();
      try {
        // Never through a symlink (N5): a folder above either path that is not one refuses the move.
        renameInRoot(this.c.localRoot, cand.path, to, true);
      } catch (e) {
        if (e instanceof SymlinkedParentError) return false;
        throw e;
      }
      this.db.renameTree(cand.path, to);
      this.c.totals.renamed++;
      this.c.log.write({
        pair: this.c.pair,
        level: 'info',
        event: 'rename',
        msg: `moved ${cand.path} → ${to} here (moved on the server)`,
        from: cand.path,
        to,
      });
      if (rTo.kind === 'dir') await this.scanRemote(to, true);
      this.db.candAdd([to]);
      return true;
    }
    return false;
  }

  // ================================================================ deciding and acting

  /** Counts what the candidates would delete; throws MassDeleteError past the threshold. */
  async checkMassDelete(): Promise<void> {
    if (this.c.massDeleteConfirmed) return;
    // Only paths the base knows as files can be deleted: when even all of them stay
    // under the threshold (always so on a first sync), there is nothing to count.
    const n = this.db.candBaseFileCount();
    if (n <= 2) return;
    const files = this.db.fileCount();
    if (!tooManyDeletions(n, files)) return;
    let deletions = 0;
    // Peek without consuming: candidates are re-added after counting.
    const all: string[] = [];
    for (;;) {
      const chunk = this.db.candTake(CHUNK);
      if (!chunk.length) break;
      all.push(...chunk);
      const decided = await this.decideChunk(chunk);
      for (const d of decided) {
        if (d.decision.action === 'delete-local' || d.decision.action === 'delete-remote') {
          if ((d.base?.kind ?? 'file') !== 'dir') deletions++;
        }
      }
    }
    this.db.candAdd(all);
    if (tooManyDeletions(deletions, files)) throw new MassDeleteError(deletions, files);
  }

  async execute(): Promise<void> {
    // A chunk that changes the server is decided and acted on under the server lock,
    // so another client cannot change the server between our look at it and our
    // writes. Local changes will most likely be written, so their chunks take the lock
    // first; a chunk of server changes only reads the server, and is decided again
    // under the lock if it turns out to write.
    const lockFirst = this.localCandidates > 0 && this.c.direction !== 'receive-only';
    await this.pushNewTrees();
    let chunk = this.takeChunk();
    while (chunk.length) {
      this.c.checkPaused();
      chunk = lockFirst
        ? await this.c.withRemoteLock(() => this.runChunks(chunk, true))
        : await this.runChunks(chunk, false);
    }
    await this.deleteDeferredDirs();
  }

  /**
   * Decides and acts on `first` and the chunks after it, deciding the next chunk while
   * this one is sent (its local stats and server stat overlap the rsync run) whenever
   * acting on this one cannot change what that decision rests on (overlapSafe).
   * `locked`: the caller holds the server lock, so a decision made under it stays valid
   * until acted on; the lock is let go (by returning) once held for LOCK_HOLD_MS, so
   * other clients get their turn in a long sync. Unlocked, a chunk that would write
   * the server is decided again under the lock. Returns the chunk left for the caller
   * (empty when there are no more candidates).
   */
  private async runChunks(first: string[], locked: boolean): Promise<string[]> {
    const heldSince = Date.now();
    let chunk = first;
    let decided = await this.decideChunk(chunk);
    for (;;) {
      if (!locked && decided.some((d) => WRITES_REMOTE.has(d.decision.action))) {
        await this.c.withRemoteLock(async () => this.act(await this.decideChunk(chunk)));
        return this.takeChunk();
      }
      const next = this.takeChunk();
      const overlap = next.length > 0 && overlapSafe(decided) && (!locked || Date.now() - heldSince < LOCK_HOLD_MS);
      const ahead = overlap ? this.decideChunk(next) : null;
      ahead?.catch(() => undefined); // seen below, unless acting on this chunk fails first
      await this.act(decided);
      if (!ahead) return next;
      this.c.checkPaused();
      chunk = next;
      decided = await ahead;
    }
  }

  /**
   * The next chunk of candidates: CHUNK of them, or up to CHUNK_SLACK more when that
   * takes the last ones (10,001 new paths, a folder and its files, go in two chunks,
   * not three; each chunk costs an rsync run and two server stats).
   */
  private takeChunk(): string[] {
    const paths = this.db.candTake(CHUNK + CHUNK_SLACK);
    if (paths.length < CHUNK + CHUNK_SLACK) return paths;
    this.db.candAdd(paths.splice(CHUNK)); // more may follow: back for the next chunk
    return paths;
  }

  private async decideChunk(paths: string[]): Promise<Decided[]> {
    const wanted = paths.filter((p) => p !== '' && !this.c.excluder.ignores(p, false));
    // A path below a local or remote symlink (or file) is absent on that side (N1, N5).
    const view = new LocalAncestors(this.c.localRoot);
    const locals = wanted.map((p) => view.lstat(p));
    const above = new Map<string, RemoteStat | null>();
    const remotes = await traced(`stat ${wanted.length} on the server`, () =>
      statRemote(this.c.remote, this.c.ssh, this.rootPath(), wanted, this.c.caps, above),
    );
    const out: Decided[] = [];
    for (let i = 0; i < wanted.length; i++) {
      const path = wanted[i]!;
      const local = locals[i] ?? null;
      if (local?.kind === 'dir' && this.c.excluder.ignores(path, true)) continue;
      const remote = remotes[i] ?? null;
      // Still being written on either side: decided once closed or quiet (rule W1).
      if (
        (local?.kind === 'file' && this.c.held?.('local', path)) ||
        (remote?.kind === 'file' && this.c.held?.('remote', path))
      )
        continue;
      let base = this.db.get(path) ?? null;
      let localChanged = base ? !local || !(await this.localUnchanged(path, local, base)) : local !== null;
      let rChanged = base ? remoteChanged(remote, base) : remote !== null;
      // W5: a push of this file that was cut short (a dropped connection, a kill) may have
      // left on the server a version this client wrote: it is not another side's edit.
      const sending = local?.kind === 'file' && remote?.kind === 'file' ? this.db.sendingGet(path) : undefined;
      if (sending && rChanged && ownSnapshot({ ...local!, ...sending }, local!, remote!, undefined)) {
        base = {
          ...(base ?? { path, hash: null, syncedAtNs: 0n, remoteIno: null }),
          kind: 'file',
          size: remote!.size,
          mtimeNs: remote!.mtimeNs,
          mode: local!.mode,
          ino: local!.ino,
          target: null,
          remoteSize: remote!.size,
          remoteMtimeNs: remote!.mtimeNs,
        };
        rChanged = false;
        localChanged = !(local!.size === remote!.size && sameRemoteTime(local!.mtimeNs, remote!.mtimeNs));
      }
      const decision = reconcile({
        path,
        base: base ? baseSide(base) : null,
        local: local ? toSide(local) : null,
        remote: remote ? toSide(remote) : null,
        localChanged,
        remoteChanged: rChanged,
        direction: this.c.direction,
      });
      const first =
        sending && !rChanged && !localChanged && base
          ? {
              action: 'record' as const,
              rule: 'W5',
              why: 'the server holds what this client sent before it was cut short',
            }
          : this.firstSyncOverride(base, local, remote, decision);
      // N5: nothing below a folder that is a symlink or a file on either side is acted on
      // (its own change of kind goes first; see act for when it is looked at again).
      const waitsFor = view.blockedBy(path) ?? waitsForParent(path, above);
      out.push({
        path,
        local,
        remote,
        base,
        decision: waitsFor === null ? first : heldBack(first, waitsFor),
        waitsFor,
        ...(sending ? { sending: true } : {}),
      });
    }
    return out;
  }

  private async act(items: Decided[]): Promise<void> {
    // Content comparisons first: they turn into record or conflict.
    const toCompare = items.filter((d) => d.decision.action === 'compare');
    if (toCompare.length) {
      const same = await rsyncSameContent({
        localRoot: this.c.localRoot,
        remote: this.c.remote,
        ssh: this.c.ssh,
        paths: toCompare.map((d) => d.path),
      });
      for (const d of toCompare) {
        d.decision = reconcile({
          path: d.path,
          base: d.base ? baseSide(d.base) : null,
          local: d.local ? toSide(d.local) : null,
          remote: d.remote ? toSide(d.remote) : null,
          localChanged: true,
          remoteChanged: true,
          sameContent: same.get(d.path) ?? false,
          direction: this.c.direction,
        });
        d.decision = this.firstSyncOverride(d.base, d.local, d.remote, d.decision);
      }
    }
    this.logFirstSyncReplacements(items);
    if (this.c.taken) for (const d of items) this.c.taken(d.path);
    this.requeueHeldBack(items);

    const push: Decided[] = [];
    const pull: Decided[] = [];
    const record: Decided[] = [];
    for (const d of items) {
      const a = d.decision.action;
      if (a === 'none') continue;
      if (a === 'record') record.push(d);
      else if (a === 'forget') this.db.deleteTree(d.path);
      else if (a === 'push' || a === 'delete-remote') push.push(d);
      else if (a === 'pull' || a === 'delete-local') pull.push(d);
      else if (a === 'delete-dir-if-empty-local') this.deferredDirs.push({ path: d.path, side: 'local' });
      else if (a === 'delete-dir-if-empty-remote') this.deferredDirs.push({ path: d.path, side: 'remote' });
      else if (a === 'conflict' || a === 'keep-local-aside') {
        const copy = this.keepLocalAside(d);
        if (copy && d.local?.kind === 'dir') {
          // A directory moved aside: its contents are new paths, found by the next cycle.
          this.c.requeueLocalTree(copy);
          this.db.deleteTree(d.path);
          pull.push({ ...d, local: null });
        } else if (copy) {
          pull.push({ ...d, local: null });
          if (a === 'conflict') {
            const st = this.lstatL(copy);
            if (st)
              push.push({
                path: copy,
                local: st,
                remote: null,
                base: null,
                decision: { action: 'push', rule: d.decision.rule, why: 'conflict copy' },
              });
          }
        }
      }
    }
    if (record.length) await this.record(record);
    if (push.length) await this.c.withRemoteLock(() => this.push(push));
    if (pull.length) await this.pull(pull);
    // W5: an interrupted send, looked at and acted on: forgotten (a new push notes it again).
    this.db.sendingDelete(items.filter((d) => d.sending).map((d) => d.path));
  }

  /**
   * N5: a path held back because a folder above it is a symlink or a file on one side
   * is looked at again in the next cycle when that folder (or one above it) is acted on
   * in this cycle: its change of kind is then done first. Otherwise it waits for a change
   * of that folder (an event or a rescan finds it), so a link that stays never loops.
   */
  private requeueHeldBack(items: Decided[]): void {
    for (const d of items) if (ACTING.has(d.decision.action)) this.actedOn.add(d.path);
    const held: string[] = [];
    for (const d of items) {
      if (d.decision.rule !== 'N5' || !d.waitsFor) continue;
      held.push(d.path);
      if (ancestorIn(d.waitsFor, this.actedOn) === null) continue;
      if (this.c.requeueRemote) this.c.requeueRemote(d.path);
      else this.c.requeueLocalTree(d.path);
    }
    if (!held.length) return;
    this.c.log.write({
      pair: this.c.pair,
      level: 'info',
      event: 'state',
      msg: `${held.length} path${held.length === 1 ? '' : 's'} below a symlink (or a file) on one side left alone: decided after that folder (N5)`,
      paths: held.slice(0, 1000),
    });
  }

  /** Paths acted on in this cycle (see requeueHeldBack). */
  private readonly actedOn = new Set<string>();

  /**
   * F2/F3 (docs/sync-semantics.md, "First sync"): while the pair has never completed a
   * sync, a path with no base that both sides hold differently (R19) is not a conflict
   * when the pair was added with `take-server` / `take-local`: that side's version wins
   * and the other goes to its side's trash (the ordinary pull / push backup).
   * Only same-kind files and symlinks; different kinds stay a conflict.
   */
  private firstSyncOverride(
    base: Entry | null,
    local: LocalStat | null,
    remote: RemoteStat | null,
    decision: Decision,
  ): Decision {
    const mode = this.c.initialSync;
    if (!mode || mode === 'merge' || base || !local || !remote) return decision;
    if (local.kind !== remote.kind || local.kind === 'dir') return decision;
    if (decision.action !== 'conflict' && decision.action !== 'keep-local-aside') return decision;
    if (mode === 'take-server' && this.c.direction !== 'send-only')
      return {
        action: 'pull',
        rule: 'F2',
        why: "first sync, take the server's copy: this computer's version goes to the trash",
      };
    if (mode === 'take-local' && this.c.direction === 'two-way')
      return {
        action: 'push',
        rule: 'F3',
        why: "first sync, take the local copy: the server's version goes to its trash",
      };
    return decision;
  }

  private logFirstSyncReplacements(items: Decided[]): void {
    for (const rule of ['F2', 'F3'] as const) {
      const paths = items.filter((d) => d.decision.rule === rule).map((d) => d.path);
      if (!paths.length) continue;
      const n = `${paths.length} file${paths.length === 1 ? '' : 's'}`;
      this.c.log.write({
        pair: this.c.pair,
        level: 'info',
        event: 'state',
        msg:
          rule === 'F2'
            ? `first sync (take the server's copy): ${n} replaced here by the server's version; this computer's versions are in .lipsync/trash`
            : `first sync (take the local copy): ${n} replaced on the server by this computer's version; the server's versions are in its .lipsync/trash`,
        paths: paths.slice(0, 1000),
      });
    }
  }

  /** Renames the local version aside as a conflict copy; returns the copy's path. */
  private keepLocalAside(d: Decided): string | null {
    if (!d.local) return null;
    const copy = conflictCopyName(d.path, this.c.deviceName, new Date(), (p) => existsInRoot(this.c.localRoot, p));
    try {
      renameInRoot(this.c.localRoot, d.path, copy);
    } catch (e) {
      // A folder above it became a symlink since the decision (N5): not renamed; looked at again.
      if (!(e instanceof SymlinkedParentError)) throw e;
      this.warn(e.toInfo());
      this.c.requeueLocalTree(d.path);
      return null;
    }
    this.db.addConflict({
      path: d.path,
      copyPath: copy,
      local: { size: d.local.size, mtime: Number(d.local.mtimeNs / 1_000_000n), origin: this.c.deviceName },
      remote: {
        size: d.remote?.size ?? 0,
        mtime: d.remote ? Number(d.remote.mtimeNs / 1_000_000n) : 0,
        origin: this.c.remoteLabel,
      },
      createdAt: Date.now(),
    });
    this.c.totals.conflicts++;
    this.c.log.write({
      pair: this.c.pair,
      level: 'warn',
      event: 'conflict',
      msg: `conflict: ${d.path} changed on both sides; this computer's version was kept as ${copy}`,
      paths: [d.path, copy],
    });
    return copy;
  }

  /**
   * Records paths both sides already agree on. A file written less than RACY_WINDOW_NS before
   * now gets its hash too, as every other recorded file does: without it, the next look at the
   * path could not tell it unchanged and would send the same content again (replacing the
   * server's copy, which went to the trash).
   */
  private async record(items: Decided[]): Promise<void> {
    const syncedAtNs = nowNs();
    const rows: Entry[] = [];
    for (const d of items) {
      if (!d.local || !d.remote) continue;
      rows.push(this.entryFor(d.path, d.local, d.remote, await this.racyHash(d.path, d.local, syncedAtNs), syncedAtNs));
    }
    this.db.upsert(rows);
  }

  private entryFor(path: string, l: LocalStat, r: RemoteStat | null, hash: string | null, syncedAtNs: bigint): Entry {
    // Field by field (a spread of the stat cost ~7 µs a row when recording big folders).
    return {
      kind: l.kind,
      size: l.size,
      mtimeNs: l.mtimeNs,
      mode: l.mode,
      ino: l.ino,
      target: l.target,
      path,
      hash,
      syncedAtNs,
      remoteSize: r ? r.size : l.size,
      remoteMtimeNs: r ? r.mtimeNs : l.mtimeNs,
      remoteIno: r ? r.ino : null,
      remoteMode: r ? r.mode : l.mode,
    };
  }

  /**
   * One rsync run over `items`, either way: a fresh trash folder, the bandwidth limit, and
   * progress by bytes (the total of the sending side's file sizes) with the current file:
   * the first one of the run that rsync has not reported done.
   */
  private transferOptions(items: Decided[], way: 'push' | 'pull'): PushOptions {
    const paths = items.map((d) => d.path);
    const sizes = items.map((d) => {
      const s = way === 'push' ? d.local : d.remote;
      return s?.kind === 'file' ? s.size : 0;
    });
    const bytesTotal = sizes.reduce((a, b) => a + b, 0);
    const sizeOf = new Map(paths.map((p, i) => [p, sizes[i]!]));
    // rsync names a file when the sender starts it (push: our side) or once it arrived (pull).
    const done = new Set<string>();
    let started: string | undefined;
    let next = 0;
    const current = (): string | undefined => {
      if (way === 'push') return started;
      while (next < paths.length && (done.has(paths[next]!) || sizes[next] === 0)) next++;
      return paths[next];
    };
    return {
      localRoot: this.c.localRoot,
      remote: this.c.remote,
      ssh: this.c.ssh,
      paths,
      trashDir: newTrashDir(),
      bwLimitKBps: this.c.bwLimitKBps || undefined,
      onFile: (f) => {
        done.add(f.path);
        if ((sizeOf.get(f.path) ?? 0) > 0) started = f.path;
      },
      onProgress: (p) => {
        const file = current();
        // A push's last named file is still being sent while bytes are left.
        const sending = way === 'push' && started !== undefined && p.bytes < bytesTotal ? 1 : 0;
        this.c.onProgress({
          filesDone: Math.max(0, Math.min(done.size - sending, paths.length)),
          filesTotal: paths.length,
          bytes: Math.min(p.bytes, bytesTotal || p.bytes),
          rateBps: p.rateBps,
          bytesTotal,
          ...(file !== undefined ? { currentFile: file } : {}),
        });
      },
    };
  }

  private async push(items: Decided[]): Promise<void> {
    this.c.checkPaused();
    this.c.expectEcho?.(items.filter((d) => d.local).map((d) => d.path));
    try {
      // W5: what is being sent, so a push cut short is not taken for another side's edit.
      this.db.sendingAdd(
        items.flatMap((d) =>
          d.local?.kind === 'file' ? [{ path: d.path, size: d.local.size, mtimeNs: d.local.mtimeNs }] : [],
        ),
      );
      const res = await traced(`rsync push ${items.length}`, () => rsyncPush(this.transferOptions(items, 'push')));
      const failed = this.failedFiles(res);
      const sentNow = items.filter((d) => d.local && !failed.has(d.path));
      const after = await traced(`stat ${sentNow.length} on the server after the push`, () =>
        statRemote(
          this.c.remote,
          this.c.ssh,
          this.rootPath(),
          sentNow.map((d) => d.path),
          this.c.caps,
        ),
      );
      const syncedAtNs = nowNs();
      const rows: Entry[] = [];
      const sentSize = new Map(res.items.filter((it) => !it.deleted).map((it) => [it.path, it.size]));
      const here = new LocalAncestors(this.c.localRoot); // N5: a path below a link is absent here
      for (let i = 0; i < sentNow.length; i++) {
        const d = sentNow[i]!;
        let local = d.local!;
        let r = after[i] ?? null;
        // The file here may have changed while rsync read it (rule W2): look again next time.
        const now = local.kind === 'file' ? here.lstat(d.path) : local;
        const movedOn = !now || now.kind !== local.kind || now.size !== local.size || now.mtimeNs !== local.mtimeNs;
        if (movedOn) this.c.requeueLocalTree(d.path);
        if (r && !landedAsSent(local, r) && now && movedOn && ownSnapshot(local, now, r, sentSize.get(d.path))) {
          // rsync read the file after it changed: the server holds a version this client
          // wrote (a snapshot between the two states seen here), not another side's edit.
          // The base records that version on both sides, so the local change since is
          // sent next as an ordinary change, never taken for a conflict.
          local = { ...local, size: r.size, mtimeNs: r.mtimeNs };
        } else if (!r || !landedAsSent(local, r)) {
          // Not what was sent (changed on the server meanwhile, or gone): the base records
          // what was sent, so the server's side counts as changed and is looked at again.
          r = null;
          this.c.requeueRemote?.(d.path);
        }
        const hash = movedOn ? null : await this.racyHash(d.path, local, syncedAtNs);
        rows.push(this.entryFor(d.path, local, r, hash, syncedAtNs));
      }
      const deleted = items.filter((d) => !d.local && !failed.has(d.path)).map((d) => d.path);
      this.recordTransfer('push', res, rows, deleted);
    } finally {
      this.c.expectEcho?.(null);
    }
  }

  private async pull(all: Decided[]): Promise<void> {
    this.c.checkPaused();
    // The local side must still be what the decision saw; a path changed since is decided again next cycle.
    const items: Decided[] = [];
    const before = new LocalAncestors(this.c.localRoot);
    for (const d of all) {
      const now = before.lstat(d.path);
      const same = !now
        ? !d.local
        : !!d.local && now.kind === d.local.kind && now.size === d.local.size && now.mtimeNs === d.local.mtimeNs;
      if (same) items.push(d);
      else this.c.requeueLocalTree(d.path);
    }
    if (!items.length) return;
    const res = await traced(`rsync pull ${items.length}`, () => rsyncPull(this.transferOptions(items, 'pull')));
    const failed = this.failedFiles(res);
    const syncedAtNs = nowNs();
    const rows: Entry[] = [];
    const deleted: string[] = [];
    const after = new LocalAncestors(this.c.localRoot);
    for (const d of items) {
      if (failed.has(d.path)) continue;
      if (!d.remote) {
        deleted.push(d.path);
        continue;
      }
      const l = after.lstat(d.path);
      if (!l) continue;
      rows.push(this.entryFor(d.path, l, d.remote, await this.racyHash(d.path, l, syncedAtNs), syncedAtNs));
    }
    this.recordTransfer('pull', res, rows, deleted);
  }

  /**
   * After a transfer succeeded: the base follows (in one transaction), the totals
   * count it, and the activity log says what moved, which way.
   */
  private recordTransfer(way: 'push' | 'pull', res: PushResult, rows: Entry[], deleted: string[]): void {
    this.db.transaction(() => {
      for (const p of deleted) this.db.deleteTree(p);
      this.db.upsert(rows);
      if (way === 'push') this.db.sendingDelete(rows.map((r) => r.path));
    });
    const files = res.items.filter((i) => !i.deleted && /^[<>]f/.test(i.itemize)).map((i) => i.path);
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
    if (way === 'push') {
      this.c.totals.filesSent += files.length;
      this.c.totals.bytesSent += res.literalBytes;
    } else {
      this.c.totals.filesReceived += files.length;
    }
    this.c.totals.deleted += deleted.length;
    if (files.length) {
      this.c.log.write({
        pair: this.c.pair,
        level: 'info',
        event: way,
        msg: `${way === 'push' ? 'sent' : 'received'} ${plural(files.length, 'file')} (${res.literalBytes} bytes of data)`,
        paths: files.slice(0, 1000),
        bytes: res.literalBytes,
      });
    }
    if (deleted.length) {
      this.c.log.write({
        pair: this.c.pair,
        level: 'info',
        event: 'delete',
        msg:
          way === 'push'
            ? `deleted ${plural(deleted.length, 'path')} on the server (kept in its .lipsync/trash)`
            : `deleted ${plural(deleted.length, 'path')} here, as on the server (kept in .lipsync/trash)`,
        paths: deleted.slice(0, 1000),
      });
    }
  }

  private async racyHash(path: string, st: LocalStat, syncedAtNs: bigint): Promise<string | null> {
    if (st.kind !== 'file' || !isRacy(st, syncedAtNs)) return null;
    try {
      return await hashFile(join(this.c.localRoot, path), st.size);
    } catch {
      return null;
    }
  }

  /** Paths rsync reported as failed or vanished; throws when the run failed as a whole. */
  private failedFiles(res: PushResult): Set<string> {
    this.c.totals.warnings.push(...res.warnings.map((w) => w.toInfo()));
    const failed = new Set<string>();
    for (const w of res.warnings) for (const f of w.files ?? []) failed.add(f);
    if (!res.ok) {
      if (
        res.error &&
        (res.error.kind === 'partial-transfer' || res.error.kind === 'permission-denied') &&
        res.error.files?.length
      ) {
        this.c.totals.warnings.push(res.error.toInfo());
        for (const f of res.error.files) failed.add(f);
        return failed;
      }
      throw res.error ?? new LipsyncError('unknown', 'rsync failed.');
    }
    return failed;
  }

  /** Directories whose contents were all deleted on the other side go last, deepest first, and only if empty. */
  private async deleteDeferredDirs(): Promise<void> {
    const dirs = this.deferredDirs.sort((a, b) => b.path.length - a.path.length);
    const remoteGone: string[] = [];
    for (const { path, side } of dirs) {
      if (side === 'local') {
        try {
          rmdirInRoot(this.c.localRoot, path);
          this.db.deleteTree(path);
          this.c.totals.deleted++;
        } catch {
          // not empty (something new arrived in it) or gone already: the next cycle decides again
        }
      } else {
        // Empty, or holding only directories that go too (deepest come first).
        let empty = true;
        for await (const child of listRemote(this.c.remote, this.c.ssh, this.rootPath(), path, this.c.caps, {
          recursive: false,
          // A name that is not UTF-8 is not listed by every remote kind: it is there all the same.
          onBadName: () => (empty = false),
        })) {
          if (!remoteGone.includes(child.path)) {
            empty = false;
            break;
          }
        }
        if (empty) remoteGone.push(path);
      }
    }
    if (remoteGone.length) {
      await this.c.withRemoteLock(() =>
        this.push(
          remoteGone.map((p) => ({
            path: p,
            local: null,
            remote: null,
            base: this.db.get(p) ?? null,
            decision: { action: 'delete-remote', rule: '', why: '' },
          })),
        ),
      );
    }
  }

  private warn(w: ErrorInfo): void {
    this.c.totals.warnings.push(w);
  }
}

/**
 * N3: a name on the server that is not valid UTF-8 is skipped (rsync runs without
 * --iconv; the path cannot be named in the list rsync reads), with this warning.
 * `path` is escaped (escapeName: `caf\xe9.txt`).
 */
export function notUtf8OnServer(path: string): ErrorInfo {
  return {
    kind: 'permission-denied',
    message: `Skipped ${path} on the server: its name is not valid UTF-8; rename it there to sync it.`,
    fix: 'Rename it on the server to a UTF-8 name (for example `convmv -f latin1 -t utf8 --notest NAME`); lipsync never converts names.',
    files: [path],
  };
}

/** Does the server's state after a push show what was sent (kind, size, mtime, symlink target)? */
function landedAsSent(l: LocalStat, r: RemoteStat): boolean {
  if (l.kind !== r.kind) return false;
  if (l.kind === 'symlink') return l.target === r.target;
  if (l.kind === 'dir') return true;
  return l.size === r.size && sameRemoteTime(l.mtimeNs, r.mtimeNs);
}

/**
 * Whether the server's file after a push is the snapshot rsync read of this client's
 * file while it changed (rule W2): the size rsync sent (when it said), and an mtime
 * between the file's mtime when decided and its mtime now (to the second).
 */
function ownSnapshot(before: LocalStat, now: LocalStat, r: RemoteStat, sentSize: number | undefined): boolean {
  if (before.kind !== 'file' || now.kind !== 'file' || r.kind !== 'file') return false;
  if (sentSize !== undefined && sentSize !== r.size) return false;
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
function sizeOf(snap: DirtySnapshot): string {
  const n = snap.trees.length + snap.dirs.reduce((a, [, names]) => a + (names === 'all' ? 1 : names.length), 0);
  return `${n} path${n === 1 ? '' : 's'}`;
}

/**
 * Whether acting on `decided` only creates or updates its own paths, keeping each one's
 * kind: no deletion, no conflict copy (a rename), no kind change (a file replacing a
 * folder removes what is below it), no forgetting of base entries. Only then may the
 * next chunk (other paths, possibly below these) be decided before this one is done.
 */
export function overlapSafe(decided: readonly Pick<Decided, 'local' | 'remote' | 'decision'>[]): boolean {
  return decided.every((d) => {
    switch (d.decision.action) {
      case 'none':
      case 'record':
        return true;
      case 'push':
        return d.local !== null && (d.remote === null || d.remote.kind === d.local.kind);
      case 'pull':
        return d.remote !== null && (d.local === null || d.local.kind === d.remote.kind);
      default:
        return false;
    }
  });
}

/**
 * How long one hold of the server lock may go on deciding ahead (see runChunks): a long
 * sync lets go of the lock between chunks after this, so other clients get their turn.
 */
export const LOCK_HOLD_MS = 10_000;

/** Decisions that change the server's side. */
const WRITES_REMOTE = new Set<Decision['action']>([
  'push',
  'delete-remote',
  'conflict',
  'delete-dir-if-empty-remote',
  'compare',
]);

interface Decided {
  path: string;
  local: LocalStat | null;
  remote: RemoteStat | null;
  base: Entry | null;
  decision: Decision;
  /** N5: the folder above the path that is a symlink or a file on one side (null: none). */
  waitsFor?: string | null;
  /** W5: an interrupted push of this file was noted; forgotten once this decision is acted on. */
  sending?: boolean;
}

/** Actions that change a side (or move content); everything else only reads or records. */
const ACTING = new Set<Decision['action']>([
  'push',
  'pull',
  'delete-remote',
  'delete-local',
  'delete-dir-if-empty-remote',
  'delete-dir-if-empty-local',
  'conflict',
  'keep-local-aside',
]);

/**
 * N5 (docs/sync-semantics.md): `decision` for a path below `parent`, a symlink or a file
 * on one side. Nothing that transfers, renames or deletes is done through it (rsync's
 * sender would read through a symlinked parent, an older receiver write through it);
 * forgetting the base of a path gone on both sides is kept.
 */
function heldBack(decision: Decision, parent: string): Decision {
  if (!ACTING.has(decision.action)) return decision;
  return {
    action: 'none',
    rule: 'N5',
    why: `${parent} above it is a symlink or a file on one side: it is decided after that folder`,
  };
}
