/**
 * What one sync cycle works with: the pair's context (CycleContext, given by the pair),
 * what the cycle's parts share while it runs (CycleState), what a decided path carries
 * (Decided), the cycle's counts (CycleTotals), and its limits.
 */
import type { ScriptLock } from '../pair/lock.js';
import type { Direction } from '../../../shared/settings.js';
import type { InitialSyncMode, SyncPairResult } from '../../../shared/api.js';
import type { Entry, Excluder, LocalStat, RemoteCapabilities, RemoteSpec, RemoteStat, SshOptions } from '../types.js';
import type { StateDb } from '../state/db.js';
import type { DirtySnapshot } from '../dirty.js';
import type { Decision, SideState } from '../reconcile.js';
import type { RemoteOps } from '../remote/ops.js';
import { LipsyncError } from '../errors.js';
import type { ActivityLog } from '../log.js';

/**
 * New folders sent whole (cycle/new-folders.ts) go in at most this many rsync runs, so
 * what arrived in one is listed and recorded while the next is sent.
 */
export const TREE_GROUPS = 16;
/** Candidates decided per step: bounds memory and the size of every rsync run. */
export const CHUNK = 5000;
/** How many more than CHUNK the last chunk may hold (see Cycle.takeChunk). */
export const CHUNK_SLACK = 500;

/** What a cycle did, as the local API reports it for a sync (SyncPairResult without pair, ok, error). */
export type CycleTotals = Omit<SyncPairResult, 'pair' | 'ok' | 'error'>;

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
  /**
   * Whether the transfer about to start compresses (rsync -z): the pair's setting, for
   * `auto` read against the link's round trip as measured now (asked once per transfer,
   * so a laptop moving from a LAN to a café switches). None: never.
   */
  compress?: () => boolean;
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
  /** The server's files at `dir` or below it still being written (left out of a folder pulled whole, T3). */
  remoteHeldBelow?: (dir: string) => string[];
  /** A file that was due (no longer held) was decided: see WriteTracker.taken. */
  taken?: (path: string) => void;
  /** Serialises writers of one remote root; returns a release function. */
  withRemoteLock: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * The owner text and TTL for a lock held for one script only (P5), or null while this
   * pair holds the lock already (PairLock.forScript).
   */
  lockForScript?: () => ScriptLock | null;
  /** Whether the lock was just taken with the server's meta dirs made (PairLock.metaFresh): a push skips prepareMeta. */
  remoteMetaFresh?: () => boolean;
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
  /** What the `since` listings of this run's first cycle look since: a clean stop or a checkpoint (the log says which). */
  restartedFrom?: 'stop' | 'checkpoint' | null;
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

/**
 * How long one hold of the server lock may go on deciding ahead (see Cycle.runChunks): a
 * long sync lets go of the lock between chunks after this, so other clients get their turn.
 */
export const LOCK_HOLD_MS = 10_000;

/** One path, decided: its three states and what the reconciler said. */
export interface Decided {
  path: string;
  local: LocalStat | null;
  remote: RemoteStat | null;
  base: Entry | null;
  decision: Decision;
  /** N5: the folder above the path that is a symlink or a file on one side (null: none). */
  waitsFor?: string | null;
  /** W5: an interrupted push of this file was noted; forgotten once this decision is acted on. */
  sending?: boolean;
  /** P6: the server file's bytes, read with `remote` by the decision's look at the server. */
  peek?: Buffer;
}

/** What the parts of one cycle share while it runs; a new one per cycle. */
export class CycleState {
  /** Candidates that came from local changes (they will most likely be pushed). */
  localCandidates = 0;
  /** Candidates of one directory's scan are inserted together (see LocalCollector.scanLocalDir). */
  candBatch: string[] | null = null;
  /** Whether the base has any entry (a move needs one; a first sync has none). Asked once per cycle. */
  baseNonEmpty: boolean | null = null;
  /** The clean-stop listings, started together by Cycle.collect. */
  localSince: Promise<DirtySnapshot | null> | null = null;
  remoteSince: Promise<DirtySnapshot | null> | null = null;
  /** What the clean-stop shortcut looked at, for the log ("12 paths here", "everything on the server"). */
  readonly sinceReport: string[] = [];
  /** Folders whose contents were all deleted on the other side: removed last, if empty. */
  readonly deferredDirs: { path: string; side: 'local' | 'remote' }[] = [];
  /** Paths acted on in this cycle (see Actor.requeueHeldBack). */
  readonly actedOn = new Set<string>();
}

export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/** A side's state as the reconciler sees it. */
export const toSide = (s: LocalStat | RemoteStat | Entry): SideState => ({
  kind: s.kind,
  size: s.size,
  mtimeNs: s.mtimeNs,
  mode: s.mode,
  target: s.target,
});

/** Whether the base has any entry (a move needs one; a first sync has none): asked once per cycle. */
export function baseHasEntries(db: StateDb, s: CycleState): boolean {
  s.baseNonEmpty ??= db.count() > 0;
  return s.baseNonEmpty;
}
