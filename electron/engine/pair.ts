import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { PairSettings } from '../../shared/settings.js';
import { etaSeconds, type PairState, type PairStatus, type TransferProgress } from '../../shared/status.js';
import type { ErrorInfo, ErrorKind } from '../../shared/errors.js';
import { INITIAL_SYNC_MODES, type InitialSyncMode, type SyncPairResult } from '../../shared/api.js';
import type { Excluder, RemoteCapabilities, RemoteSpec, SshOptions } from './types.js';
import { StateDb } from './state/db.js';
import { createExcluder } from './excludes.js';
import { DirtySet, type DirtySnapshot } from './dirty.js';
import { createWatcher, WatchStartError, type Watcher, type WatchFailure } from './watch/watcher.js';
import type { WalkSince } from './watch/walkwatch.js';
import { purgeLocalTrash, remoteOps, type RemoteOps } from './remote/ops.js';
import { parseRemote } from './remote/spec.js';
import { probeCapabilities } from './remote/probe.js';
import { createRemoteWatcher, setChangeMarker, type RemoteWatcher } from './remote/watch.js';
import { localChangedSince } from './since.js';
import { Cycle, MassDeleteError, emptyTotals, type CycleTotals } from './cycle.js';
import { LipsyncError, isFatalKind, toErrorInfo } from './errors.js';
import { existsInRoot, renameInRoot } from './safe-fs.js';
import { rsyncSymlinkWarning, rsyncVersion } from './remote/rsync.js';
import type { ActivityLog } from './log.js';
import { traced } from './trace.js';
import { cancelHeapRelease, scheduleHeapRelease } from './memory.js';
import { WriteTracker } from './writing.js';
import { PathRetries, dedupeWarnings, holdingExcluder, snapshotCovers, snapshotTouchesAbove } from './retry.js';
import { clearPartials, fullSide, unfitFiles, unfitWarning } from './unfit.js';

const LOCAL_MARKER = join('.lipsync', 'pair-id');
/** A remote lock not refreshed for this long belongs to a dead client. */
export const LOCK_TTL_MS = 60_000;
/** How long stop() lets a running cycle finish before cutting it short. */
const STOP_FINISH_MS = 3000;

/** Meta key of the problem the last run ended with (see PairRunner.rememberProblem). */
const LAST_PROBLEM_META = 'lastProblem';

/** The problem a pair's last run ended with (the mass-delete pause, or an error). */
export interface LastProblem {
  as: 'mass-delete' | 'error';
  info: ErrorInfo;
}

/** The problem the pair's last run ended with, from its database; undefined when none (or unreadable). */
export function readLastProblem(db: StateDb): LastProblem | undefined {
  const raw = db.getMeta(LAST_PROBLEM_META);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as LastProblem;
  } catch {
    return undefined;
  }
}

/** Meta key of the clean-stop record (see PairRunner.recordCleanStop). */
const CLEAN_STOP_META = 'cleanStop';
/** The clean-stop horizons are dated this far back: events still in flight at the stop are looked at again. */
const CLEAN_STOP_MARGIN_MS = 5000;

/** A clean-stop listing made ahead of the cycle that asks for it (by `since` token). */
interface SincePrefetch {
  token: string;
  result: Promise<DirtySnapshot | null>;
}

interface CleanStop {
  v: 1;
  /** Local paths with a ctime after this (ms) are looked at on the next start. */
  localSinceMs: number;
  /** The server's marker was set at the stop (else the server is compared whole). */
  remote: boolean;
  /** cleanStopSettings() at the stop. */
  settings: string;
}

/** While the server cannot be reached, a reconnect is tried this often (a refused connection costs nothing). */
export const UNREACHABLE_RETRY_MS = 2000;
/** Files held back as not fitting on a full disk in one run of the loop before the disk counts as full for the pair. */
const MAX_UNFIT_PER_RUN = 5;

/** The longest a batch waits for a burst of events to settle before it goes anyway. */
export const MAX_BATCH_WAIT_MS = 1000;

export interface PairDeps {
  stateDbFile: string;
  ssh: SshOptions;
  log: ActivityLog;
  debounceMs: number;
  /** A file written to and not closed is sent once quiet this long (see writing.ts); default 2000. */
  writeQuietMs?: number;
  /** ... or once held this long (a file that never stops changing); default 30000. */
  writeMaxDelayMs?: number;
  /** Shown in conflict copy names and lock owners. */
  deviceName: string;
  /** Override for tests and unusual systems: path of inotifywait. */
  inotifywaitPath?: string;
  /** Run without a watcher (one-shot `lipsync sync` without a daemon). */
  watch: boolean;
  /** Days the trash keeps replaced and deleted versions. */
  trashDays: number;
  /** Interval of remote polling when the server has no inotifywait. */
  remotePollMs?: number;
  onChange?: () => void;
}

type Waiter = (r: SyncPairResult) => void;

class PausedSignal extends Error {}

/**
 * One folder pair: its watcher, its dirty set, its state database and the
 * loop that turns changes into remote renames, deletions and rsync batches.
 * An entry in the database changes only after the remote operation it records
 * succeeded, so a crash at any instant is recovered by the next scan.
 */
export class PairRunner {
  readonly id: string;
  private settings: PairSettings;
  private readonly remote: RemoteSpec;
  private readonly ops: RemoteOps;
  private excluder: Excluder;
  private db: StateDb | null = null;
  private watcher: Watcher | null = null;
  private readonly dirty = new DirtySet();
  /** Paths the server's change feed named. */
  private readonly remoteDirty = new DirtySet();
  /** Files still being written here and on the server: held back until closed or quiet (writing.ts). */
  private readonly localWriting: WriteTracker;
  private readonly remoteWriting: WriteTracker;
  private remoteWatcher: RemoteWatcher | null = null;
  private remoteFeed: { mode: 'inotify' | 'poll'; connected: boolean; error?: string } | null = null;
  private caps: RemoteCapabilities | null = null;
  private massDeleteConfirmed = false;
  private massDelete: ErrorInfo | undefined;
  private lockDepth = 0;
  private readonly clientId = randomBytes(4).toString('hex');
  private conflictCount = 0;
  private lastPurgeAt = 0;
  private running = false;
  private stopped = false;
  /** stop() was called: no new cycle starts (the running one may finish, see stop). */
  private stopping = false;
  private kickTimer: NodeJS.Timeout | null = null;
  /** For the clean-stop record: when this run started, and whether anything in it may have been missed. */
  private startedAt = 0;
  private cleanRun = true;
  private stopCycleFailed = false;
  /** When the last event (kick) came, and when the batch waiting for it began (see kick). */
  private lastKickAt = 0;
  private batchStartedAt = 0;
  private rescanTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = 1000;
  private pendingWaiters: Waiter[] = [];
  private state: PairState = 'starting';
  private fatal: ErrorInfo | undefined;
  private degraded: ErrorInfo | undefined;
  private lastError: ErrorInfo | undefined;
  /** Warnings of the last completed cycle that name no path (per-path ones are in `retries`). */
  private warnings: ErrorInfo[] = [];
  /** Paths that failed, retried on a back-off (retry.ts). */
  private readonly retries = new PathRetries();
  private pathRetryTimer: NodeJS.Timeout | null = null;
  /** Shown for this run of the pair (a state database rebuilt at start). */
  private notices: ErrorInfo[] = [];
  /** N3 warnings (names that are not valid UTF-8, here or on the server), by message. */
  private readonly badNames = new Map<string, ErrorInfo>();
  private progress: TransferProgress | undefined;
  private lastSyncAt: number | null = null;
  private remoteReady = false;
  private readonly progressListeners = new Set<(p: TransferProgress) => void>();
  private cycleDone: Promise<void> = Promise.resolve();
  private preparing: Promise<void> | null = null;
  /** Paths being pushed (see CycleContext.expectEcho): the server watcher's events for them are ours. */
  private echo: Set<string> | null = null;
  /** What changed since the clean stop, listed ahead: here by start(), on the server by its watcher's first walk. */
  private sincePrefetch: Record<'local' | 'remote', SincePrefetch | null> = { local: null, remote: null };
  /** The marker the server watcher's first walk lists changes since (after a clean stop), else null. */
  private remoteSinceMarker: string | null = null;
  /** The running cycle was asked for by "sync now": a pause does not interrupt it. */
  private forcedCycle = false;
  /** "Sync now" was asked while a cycle ran: the next cycle runs even if paused. */
  private forceRequested = false;

  constructor(
    settings: PairSettings,
    private readonly deps: PairDeps,
  ) {
    this.id = settings.id;
    this.settings = settings;
    this.remote = parseRemote(settings.remote);
    this.ops = remoteOps(this.remote, this.sshOptions());
    this.excluder = createExcluder(settings.excludes);
    const writeOpts = { quietMs: deps.writeQuietMs ?? 2000, maxDelayMs: deps.writeMaxDelayMs ?? 30_000 };
    this.localWriting = new WriteTracker({
      ...writeOpts,
      onDue: (paths) => {
        for (const p of paths) this.dirty.addPath(p);
        this.kick();
      },
    });
    this.remoteWriting = new WriteTracker({
      ...writeOpts,
      onDue: (paths) => {
        for (const p of paths) this.remoteDirty.addPath(p);
        this.kick();
      },
    });
  }

  private sshOptions(): SshOptions {
    return { ...this.deps.ssh, identityFile: this.settings.identityFile ?? this.deps.ssh.identityFile };
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    this.stopped = false;
    this.stopping = false;
    this.startedAt = Date.now();
    this.cleanRun = true;
    this.stopCycleFailed = false;
    mkdirSync(join(this.deps.stateDbFile, '..'), { recursive: true, mode: 0o700 });
    this.notices = [];
    const opened = StateDb.openOrRebuild(this.deps.stateDbFile);
    this.db = opened.db;
    if (opened.damaged) this.noteRebuiltDb(opened.damaged.movedTo, opened.damaged.reason);
    const last = this.db.getMeta('lastSyncAt');
    this.lastSyncAt = last ? Number(last) : null;
    if (!this.checkLocalRoot()) return;
    const clean = this.takeCleanStop();
    // After a clean stop the watchers' first walks also list what changed since it
    // (docs/sync-semantics.md, "Restart after a clean stop"): one walk per side.
    this.remoteSinceMarker = clean?.remote ? this.remoteMarkerId() : null;
    // The ssh connection and the server's checks start now, alongside the local watcher.
    if (this.deps.watch && !this.isPaused()) this.prepareRemote().catch(() => undefined);
    if (this.deps.watch)
      await traced('local watcher start', () => this.startWatcher(clean ? { ms: clean.localSinceMs } : null));
    this.scheduleRescans();
    this.setState();
    this.conflictCount = this.db.openConflicts().length;
    // Without a daemon (a one-shot command), the pair shows the problem its last run ended with.
    if (!this.deps.watch) this.recallProblem();
    if (this.deps.watch) {
      // Find what changed while nobody was watching: after a clean stop, what changed
      // since it; else compare both sides with the database.
      if (clean) {
        const token = String(clean.localSinceMs);
        this.dirty.addSince(token);
        const listed = this.watcher?.changedSince?.();
        // Listed by the watcher's walk; else one find, which needs no server: it runs
        // while the server is being connected.
        const result =
          listed !== undefined
            ? Promise.resolve(listed)
            : traced('local changed since', () => localChangedSince(this.settings.local, clean.localSinceMs));
        result.catch(() => undefined);
        this.sincePrefetch.local = { token, result };
      } else this.dirty.addFull();
      if (clean?.remote) this.remoteDirty.addSince(this.remoteMarkerId());
      else this.remoteDirty.addFull();
      this.kick(0);
    }
  }

  /**
   * The record of the last clean stop, if the settings that matter are unchanged;
   * always cleared, so a crash from now on is never taken for a clean stop.
   */
  private takeCleanStop(): CleanStop | null {
    const db = this.requireDb();
    const raw = db.getMeta(CLEAN_STOP_META);
    if (!raw) return null;
    db.setMeta(CLEAN_STOP_META, '');
    try {
      const c = JSON.parse(raw) as CleanStop;
      if (c.v !== 1 || typeof c.localSinceMs !== 'number' || c.settings !== this.cleanStopSettings()) return null;
      return c;
    } catch {
      return null;
    }
  }

  /** What must not have changed between a clean stop and the next start for the stop to count. */
  private cleanStopSettings(): string {
    return JSON.stringify([this.settings.local, this.settings.remote, this.settings.direction, this.settings.excludes]);
  }

  /** This pair's stable change marker on the server (.lipsync/poll-marker-ID), kept in the database. */
  private remoteMarkerId(): string {
    const db = this.requireDb();
    let id = db.getMeta('remoteMarkerId');
    if (!id) {
      id = `p${randomBytes(8).toString('hex')}`;
      db.setMeta('remoteMarkerId', id);
    }
    return id;
  }

  /**
   * At stop: when everything seen in this run is in the database (a sync finished,
   * nothing pending, no error or warning, both watchers healthy throughout), the
   * next start needs to look only at what changed since now. The server side gets
   * its marker dated back (server clock); the local side a ctime horizon likewise.
   */
  private async recordCleanStop(): Promise<void> {
    const db = this.db;
    if (!db || !this.deps.watch || !this.cleanRun || this.stopCycleFailed) return;
    if (this.lastSyncAt === null || this.lastSyncAt < this.startedAt) return;
    if (!this.dirty.isEmpty() || !this.remoteDirty.isEmpty()) return;
    if (this.lastError || this.fatal || this.massDelete || this.degraded || this.isPaused()) return;
    const localSinceMs = Date.now() - CLEAN_STOP_MARGIN_MS;
    let remote = false;
    if (this.settings.direction === 'send-only')
      remote = true; // the server's changes are never read
    else if (this.remoteReady && this.caps?.gnuFind && this.remoteFeed?.connected) {
      if (this.remoteFeed.mode === 'poll')
        remote = true; // the poll marker is where the last poll left it
      else {
        remote = await setChangeMarker(
          this.remote,
          this.sshOptions(),
          this.remote.path,
          this.remoteMarkerId(),
          CLEAN_STOP_MARGIN_MS / 1000,
        ).then(
          () => true,
          () => false,
        );
      }
    }
    const c: CleanStop = { v: 1, localSinceMs, remote, settings: this.cleanStopSettings() };
    db.setMeta(CLEAN_STOP_META, JSON.stringify(c));
  }

  async stop(): Promise<void> {
    // No new cycle from now; one that is running gets a moment to finish, so a stop
    // during a short sync is still clean (the next start then looks only at changes).
    this.stopping = true;
    // A file held because it was still being written is not in the base: not a clean stop.
    if (this.localWriting.size || this.remoteWriting.size) this.cleanRun = false;
    this.localWriting.stop();
    this.remoteWriting.stop();
    for (const t of [this.kickTimer, this.rescanTimer, this.retryTimer, this.pathRetryTimer]) if (t) clearTimeout(t);
    this.kickTimer = this.rescanTimer = this.retryTimer = this.pathRetryTimer = null;
    if (this.running) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.cycleDone.catch(() => undefined),
        new Promise((r) => (timer = setTimeout(r, STOP_FINISH_MS))),
      ]);
      clearTimeout(timer);
    }
    this.stopped = true;
    // A cycle cut short by the stop leaves work behind: the stop is then not clean.
    this.stopCycleFailed = this.running;
    await this.watcher?.stop().catch(() => undefined);
    this.watcher = null;
    await this.preparing?.catch(() => undefined);
    await this.remoteWatcher?.stop().catch(() => undefined);
    this.remoteWatcher = null;
    await this.cycleDone.catch(() => undefined);
    await this.recordCleanStop().catch(() => undefined);
    await this.ops.close().catch(() => undefined);
    this.db?.close();
    this.db = null;
  }

  /** New settings for this pair (excludes, bandwidth, pause...). */
  async update(settings: PairSettings): Promise<void> {
    const excludesChanged = JSON.stringify(settings.excludes) !== JSON.stringify(this.settings.excludes);
    const wasPaused = this.isPaused();
    this.settings = settings;
    if (excludesChanged) {
      this.excluder = createExcluder(settings.excludes);
      this.dirty.addFull();
    }
    this.scheduleRescans();
    // New excludes: compare both sides now, not at the next rescan (an hour later).
    if ((wasPaused && !this.isPaused()) || excludesChanged) this.kick(0);
    this.setState();
  }

  isPaused(): boolean {
    if (this.massDelete) return true;
    if (!this.settings.paused) return false;
    return this.settings.pausedUntil === null || this.settings.pausedUntil > Date.now();
  }

  onProgress(l: (p: TransferProgress) => void): () => void {
    this.progressListeners.add(l);
    return () => this.progressListeners.delete(l);
  }

  /** Sync now: a full compare of disk and database, then push; resolves when done. */
  syncNow(): Promise<SyncPairResult> {
    return new Promise<SyncPairResult>((resolve) => {
      if (this.fatal && !this.checkLocalRoot()) {
        resolve(this.result(emptyTotals(), this.fatal));
        return;
      }
      this.dirty.addFull();
      this.remoteDirty.addFull();
      // A cycle already running does work this caller waits for: its totals count too
      // (else `lipsync sync` said "0 files sent" after waiting on the daemon's own transfer).
      const carry = this.running ? this.cycleTotals : null;
      this.pendingWaiters.push(carry ? (r) => resolve(withWaitedFor(r, carry)) : resolve);
      this.forceRequested = true;
      this.kick(0, true);
    });
  }

  status(): PairStatus {
    return {
      id: this.id,
      local: this.settings.local,
      remote: this.settings.remote,
      direction: this.settings.direction,
      state: this.state,
      reason:
        this.fatal ?? this.massDelete ?? this.degraded ?? (this.isPaused() ? pausedReason(this.settings) : undefined),
      pausedUntil: this.settings.pausedUntil,
      watcher: this.watcher ? this.watcher.backend : 'none',
      remoteWatcher: this.remoteFeed ? (this.remoteFeed.connected ? this.remoteFeed.mode : 'disconnected') : 'none',
      conflicts: this.conflictCount,
      entries: this.db ? this.db.count() : 0,
      pending:
        this.dirty.size === Number.POSITIVE_INFINITY || this.remoteDirty.size === Number.POSITIVE_INFINITY
          ? -1
          : this.dirty.size + this.remoteDirty.size,
      lastSyncAt: this.lastSyncAt,
      lastError: this.lastError,
      progress: this.progress,
      warnings: [...this.notices, ...this.badNames.values(), ...this.retries.warnings(), ...this.warnings].slice(-20),
    };
  }

  // ---------------------------------------------------------------- safety checks

  /** The local root must exist and be this pair's folder; never read a missing root as "all deleted". */
  private checkLocalRoot(): boolean {
    const root = this.settings.local;
    let ok = false;
    try {
      ok = statSync(root).isDirectory();
    } catch {
      ok = false;
    }
    if (!ok) {
      this.fail(
        new LipsyncError('local-missing', `The local folder ${root} is missing or not a directory.`, {
          fix: 'If it is on a disk that is not mounted, mount it; lipsync resumes on the next sync. Nothing was deleted on the server.',
        }),
      );
      return false;
    }
    const marker = join(root, LOCAL_MARKER);
    if (!existsSync(marker)) {
      if (this.db && this.db.count() > 0) {
        this.fail(
          new LipsyncError(
            'local-missing',
            `The local folder ${root} has lost its lipsync marker (.lipsync/pair-id).`,
            {
              fix: 'If the disk holding it was swapped or unmounted, mount the right one. If you recreated the folder on purpose, remove the pair and add it again. Nothing was deleted on the server.',
            },
          ),
        );
        return false;
      }
      writeLocalMarker(root, this.id);
    } else if (readFileSync(marker, 'utf8').trim() !== this.id) {
      this.fail(
        new LipsyncError('local-missing', `The local folder ${root} belongs to another lipsync pair.`, {
          fix: 'Check the path of this pair (`lipsync list`).',
        }),
      );
      return false;
    }
    if (this.fatal?.kind === 'local-missing') this.fatal = undefined;
    return true;
  }

  /** Connects and checks the server once (concurrent callers share the attempt). */
  private prepareRemote(): Promise<void> {
    if (this.remoteReady) return Promise.resolve();
    this.preparing ??= this.connectRemote().finally(() => {
      this.preparing = null;
    });
    return this.preparing;
  }

  private async connectRemote(): Promise<void> {
    if (this.remoteReady) return;
    const probe = await traced('probe', () => this.ops.probe());
    if (probe.root === 'missing') {
      throw new LipsyncError('remote-missing', `The remote folder ${this.settings.remote} does not exist.`, {
        fix: 'If it is on a disk that is not mounted, mount it. lipsync does not recreate a vanished folder by itself; remove the pair and add it again to start over.',
      });
    }
    if (probe.root === 'not-dir') {
      throw new LipsyncError('remote-not-dir', `The remote path ${this.settings.remote} is not a directory.`);
    }
    if (probe.root === 'no-access') {
      throw new LipsyncError(
        'permission-denied',
        `The remote folder ${this.settings.remote} cannot be read or written.`,
        {
          fix: 'Check its owner and permissions on the server.',
        },
      );
    }
    if (probe.rsyncVersion === null) {
      throw new LipsyncError(
        'rsync-missing-remote',
        `rsync is not installed on the server of ${this.settings.remote}.`,
        {
          fix: 'Install it there: sudo apt install rsync (or your system’s package manager).',
        },
      );
    }
    // N5: an rsync whose receiver follows a symlinked parent leaves a race window; say so, sync on.
    const oldRsync = rsyncSymlinkWarning(
      await rsyncVersion(),
      probe.rsyncVersion,
      this.remote.kind === 'ssh' ? this.remote.host : 'the server',
    );
    if (oldRsync) this.deps.log.write({ pair: this.id, level: 'warn', event: 'state', msg: oldRsync });
    // The remote root's marker names the shared folder (every client syncing it joins the same id).
    // Read alongside the capability probe: two sessions over the one ssh connection.
    const capsProbe = probeCapabilities(this.remote, this.sshOptions());
    capsProbe.catch(() => undefined); // seen below, unless a check here throws first
    const marker = await this.ops.readMarker();
    const db = this.requireDb();
    const joined = db.getMeta('remoteFolderId');
    if (marker === null && (joined || db.count() > 0)) {
      throw new LipsyncError(
        'remote-missing',
        `The remote folder ${this.settings.remote} has lost its lipsync marker (.lipsync/pair-id).`,
        {
          fix: 'If it is on a disk that is not mounted on the server, mount it. If the folder was recreated on purpose, remove the pair and add it again. Nothing was deleted.',
        },
      );
    }
    if (marker !== null && joined && marker !== joined) {
      throw new LipsyncError(
        'remote-not-dir',
        `The remote folder ${this.settings.remote} is not the folder this pair synced before (its marker changed).`,
        {
          fix: 'If another disk is mounted there, mount the right one. To sync with this folder from scratch, remove the pair and add it again. Nothing was deleted.',
        },
      );
    }
    this.caps = await capsProbe;
    // The server's watcher (it ignores .lipsync) starts while the meta folders are made.
    const watching =
      this.deps.watch && !this.stopped && this.settings.direction !== 'send-only' && !this.remoteWatcher
        ? traced('remote watcher start', () => this.startRemoteWatcher())
        : Promise.resolve();
    watching.catch(() => undefined);
    // Also removes what an interrupted folder push of this pair left in .lipsync/incoming.
    await this.ops.prepareMeta(`${this.remoteMarkerId()}-`);
    if (marker === null) {
      // Another client may be joining this empty folder at this moment: the first id written stands.
      db.setMeta('remoteFolderId', await this.ops.claimMarker(randomUUID()));
    } else if (!joined) {
      db.setMeta('remoteFolderId', marker);
    }
    await watching;
    this.remoteReady = true;
    this.purgeTrashDaily();
  }

  /** Trash older than the configured age goes, on both sides, once a day. */
  private purgeTrashDaily(): void {
    if (Date.now() - this.lastPurgeAt < 24 * 3600_000) return;
    this.lastPurgeAt = Date.now();
    const days = this.deps.trashDays;
    void Promise.all([this.ops.purgeTrash(days), purgeLocalTrash(this.settings.local, days)]).then(
      ([remote, local]) => {
        if (remote + local > 0) {
          this.deps.log.write({
            pair: this.id,
            level: 'info',
            event: 'state',
            msg: `purged ${remote + local} trash folder(s) older than ${days} days`,
          });
        }
      },
      () => undefined,
    );
  }

  /** The server's change feed: inotifywait streamed over ssh, or polling. */
  private async startRemoteWatcher(): Promise<void> {
    const w = createRemoteWatcher(
      this.remote,
      this.sshOptions(),
      this.remote.path,
      this.caps ?? { inotifywait: false, gnuFind: false },
      {
        onChanges: (changes) => {
          let fresh = 0;
          for (const ch of changes) {
            // Our own push, reported back: the stat after the push records that state.
            if (this.echo?.has(ch.path) && ch.kind !== 'delete' && ch.kind !== 'move-from') continue;
            // A file still being written on the server waits for its close (or quiet).
            if (noteWriting(this.remoteWriting, ch)) continue;
            fresh++;
            if (ch.isDir && (ch.kind === 'create' || ch.kind === 'move-to')) this.remoteDirty.addTree(ch.path);
            else if (ch.isDir && ch.kind === 'modify') this.remoteDirty.markDir(ch.path);
            else this.remoteDirty.addPath(ch.path);
          }
          if (fresh) this.kick();
        },
        onRescanNeeded: () => {
          this.remoteDirty.addFull();
          this.kick();
        },
        onState: (st) => {
          this.remoteFeed = st;
          this.deps.onChange?.();
        },
      },
      {
        excluder: this.excluder,
        clientId: this.remoteMarkerId(),
        pollIntervalMs: this.deps.remotePollMs,
        ...(this.remoteSinceMarker !== null ? { sinceMarkerId: this.remoteSinceMarker } : {}),
      },
    );
    const sinceMarker = this.remoteSinceMarker;
    this.remoteSinceMarker = null;
    this.remoteWatcher = w;
    try {
      await w.start();
      const listed = w.changedSince?.();
      if (sinceMarker !== null && listed !== undefined)
        this.sincePrefetch.remote = { token: sinceMarker, result: Promise.resolve(listed) };
      this.remoteFeed = { mode: w.mode, connected: true };
    } catch (e) {
      this.remoteFeed = { mode: w.mode, connected: false, error: toErrorInfo(e).message };
    }
  }

  /** The user confirmed a mass deletion: the next cycle may delete past the threshold. */
  confirm(): void {
    this.massDeleteConfirmed = true;
    this.massDelete = undefined;
    this.dirty.addFull();
    this.remoteDirty.addFull();
    this.setState();
    this.kick(0, true);
  }

  openConflicts() {
    return this.db ? this.db.openConflicts() : [];
  }

  /** Settles conflict `id`: keep the local version (the copy), the remote one (the name), or both. */
  async resolve(id: number, keep: 'local' | 'remote' | 'both'): Promise<void> {
    const db = this.requireDb();
    const c = db.getConflict(id);
    if (!c || c.resolvedAt !== null)
      throw new LipsyncError('pair-unknown', `There is no open conflict ${id}.`, { fix: 'See `lipsync conflicts`.' });
    const root = this.settings.local;
    const trash = `.lipsync/trash/${new Date().toISOString().slice(0, 10)}/resolve-${id}`;
    // Never through a symlink (N5): a folder above either path that is not one refuses it.
    if (keep === 'local') {
      // The local version (in the copy) takes the name; the other version goes to the trash.
      if (existsInRoot(root, c.copyPath)) {
        if (existsInRoot(root, c.path)) renameInRoot(root, c.path, `${trash}/${c.path}`, true);
        renameInRoot(root, c.copyPath, c.path);
      }
    } else if (keep === 'remote') {
      if (existsInRoot(root, c.copyPath)) renameInRoot(root, c.copyPath, `${trash}/${c.copyPath}`, true);
    }
    db.resolveConflict(id, keep);
    this.conflictCount = db.openConflicts().length;
    this.deps.log.write({
      pair: this.id,
      level: 'info',
      event: 'conflict',
      msg: `conflict ${id} (${c.path}) resolved: kept ${keep}`,
    });
    this.dirty.addPath(c.path);
    this.dirty.addPath(c.copyPath);
    this.kick(0, true);
    this.setState();
  }

  // ---------------------------------------------------------------- watching

  private async startWatcher(since: WalkSince = null): Promise<void> {
    try {
      const w = await createWatcher(
        this.settings.local,
        {
          onEvents: (events) => {
            for (const ev of events) {
              // A file still being written waits for its close (or quiet); parcel reports no closes.
              if (this.watcher?.backend !== 'parcel' && noteWriting(this.localWriting, ev)) continue;
              if (ev.isDir && (ev.kind === 'create' || ev.kind === 'move-to')) this.dirty.addTree(ev.path);
              else this.dirty.addPath(ev.path);
            }
            this.kick();
          },
          onOverflow: () => {
            this.dirty.addFull();
            this.kick();
          },
          onError: (f) => this.watcherFailed(f),
        },
        { excluder: this.excluder, inotifywaitPath: this.deps.inotifywaitPath, since },
      );
      await w.start();
      this.watcher = w;
      this.degraded = undefined;
    } catch (e) {
      if (e instanceof WatchStartError) this.watcherFailed(e.failure, false);
      else this.watcherFailed({ kind: 'unavailable', message: (e as Error).message }, false);
    }
    this.setState();
  }

  private watcherFailed(f: WatchFailure, restart = true): void {
    this.watcher = null;
    this.cleanRun = false;
    const kind = f.kind === 'watch-limit' || f.kind === 'instance-limit' ? 'watch-limit' : 'watcher-died';
    this.degraded = {
      kind,
      message: `${f.message} Changes are still synced by a rescan every ${this.degradedRescanSec()} s.`,
      fix: f.fix,
      detail: f.detail,
    };
    this.deps.log.write({
      pair: this.id,
      level: 'warn',
      event: 'state',
      msg: `degraded: ${f.message}${f.fix ? ` Fix: ${f.fix}` : ''}`,
    });
    this.scheduleRescans();
    this.setState();
    if (restart && !this.stopped && kind === 'watcher-died') {
      // Try again later; events were missed meanwhile, so rescan once it is back.
      setTimeout(() => {
        if (this.stopped || this.watcher) return;
        void this.startWatcher().then(() => {
          if (this.watcher) {
            this.dirty.addFull();
            this.kick();
          }
        });
      }, 5000).unref();
    }
  }

  private degradedRescanSec(): number {
    return Math.min(this.settings.rescanIntervalSec, 60);
  }

  private scheduleRescans(): void {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.stopped || !this.deps.watch) return;
    const sec = this.degraded ? this.degradedRescanSec() : this.settings.rescanIntervalSec;
    this.rescanTimer = setInterval(() => {
      this.dirty.addFull();
      this.kick(0);
    }, sec * 1000);
    this.rescanTimer.unref();
  }

  // ---------------------------------------------------------------- the loop

  /**
   * Ask the loop to run once events have settled (or now, with delay 0): a batch
   * goes when no new event came for `delayMs` (the debounce, 20 ms by default),
   * or MAX_BATCH_WAIT_MS after its first event while a burst goes on. One saved
   * file is thus on its way within milliseconds, and a burst (a copy, an
   * `rm -r`) goes as few large batches, which the mass-delete check sees whole.
   */
  private kick(delayMs = this.deps.debounceMs, force = false): void {
    if (this.stopped || this.stopping) return;
    if (this.isPaused() && !force) {
      this.setState();
      return;
    }
    this.lastKickAt = Date.now();
    cancelHeapRelease(); // not quiet any more
    if (this.running) return; // the loop looks again when the cycle ends
    if (this.kickTimer && delayMs > 0) return; // the pending batch takes this event too
    if (this.kickTimer) clearTimeout(this.kickTimer);
    this.batchStartedAt = this.lastKickAt;
    const fire = (): void => {
      const wait = delayMs > 0 ? this.settleWait(delayMs) : 0;
      if (wait > 0) {
        this.kickTimer = setTimeout(fire, wait);
        return;
      }
      this.kickTimer = null;
      this.cycleDone = this.loop(force);
    };
    this.kickTimer = setTimeout(fire, delayMs);
  }

  /** How much longer a batch should wait for events to settle (0: go now). */
  private settleWait(quietMs: number): number {
    const now = Date.now();
    if (now - this.batchStartedAt >= MAX_BATCH_WAIT_MS) return 0;
    const quietFor = now - this.lastKickAt;
    return quietFor >= quietMs ? 0 : Math.min(quietMs - quietFor, MAX_BATCH_WAIT_MS - (now - this.batchStartedAt));
  }

  private async loop(force: boolean): Promise<void> {
    if (this.running || this.stopped || this.stopping) return;
    this.running = true;
    cancelHeapRelease();
    let first = true;
    let unfitThisRun = 0;
    try {
      while (
        !this.stopped &&
        !this.stopping &&
        (!this.dirty.isEmpty() || !this.remoteDirty.isEmpty()) &&
        (force || this.forceRequested || !this.isPaused())
      ) {
        if (!first && !force && !this.forceRequested && this.deps.debounceMs > 0) {
          // Events that came during the last cycle: let a burst still going on settle first.
          this.batchStartedAt = Date.now();
          for (let w = this.settleWait(this.deps.debounceMs); w > 0; w = this.settleWait(this.deps.debounceMs))
            await new Promise((r) => setTimeout(r, w));
          if (this.stopped || this.stopping) break;
        }
        first = false;
        this.forcedCycle = force || this.forceRequested;
        this.forceRequested = false;
        force = false;
        const waiters = this.pendingWaiters;
        this.pendingWaiters = [];
        const localSnap = this.dirty.take();
        const remoteSnap = this.remoteDirty.take();
        // Files that did not fit on a full disk stay out until their next try (retry.ts).
        const held = this.retries.held();
        this.setState('syncing');
        const totals: CycleTotals = emptyTotals();
        this.cycleTotals = totals;
        let error: ErrorInfo | undefined;
        try {
          if (!this.checkLocalRoot())
            throw new LipsyncError(this.fatal!.kind, this.fatal!.message, { fix: this.fatal!.fix });
          await traced('prepare remote', () => this.prepareRemote());
          await traced('cycle', () => this.runCycle(localSnap, remoteSnap, totals, held));
          this.pathResults(localSnap, remoteSnap, totals, held);
          unfitThisRun = 0;
          this.conflictCount = this.db ? this.db.openConflicts().length : 0;
          this.lastSyncAt = Date.now();
          this.db?.setMeta('lastSyncAt', String(this.lastSyncAt));
          this.lastError = undefined;
          if (this.fatal && this.fatal.kind !== 'local-missing') this.fatal = undefined;
          this.retryDelayMs = 1000;
          this.db?.setMeta(LAST_PROBLEM_META, '');
        } catch (e) {
          if (e instanceof PausedSignal) {
            // Paused mid-cycle: what was done is recorded; the rest is found again on resume.
            this.dirty.addFull();
            this.remoteDirty.addFull();
            this.pendingWaiters.unshift(...waiters);
            break;
          }
          if (e instanceof MassDeleteError) {
            // Nothing was deleted: ask first (`lipsync confirm`).
            this.massDelete = e.toInfo();
            this.massDelete.fix = `If that is what you want, run \`lipsync confirm ${this.id}\`; otherwise restore the files (or mount the disk).`;
            this.deps.log.write({
              pair: this.id,
              level: 'warn',
              event: 'state',
              msg: `paused: ${e.message} Run \`lipsync confirm ${this.id}\` to go on.`,
            });
            this.rememberProblem('mass-delete', this.massDelete);
            this.dirty.addFull();
            this.remoteDirty.addFull();
            const result = this.result(totals, this.massDelete);
            // Everyone waiting gets the answer now, also who asked during this cycle.
            for (const w of [...waiters, ...this.pendingWaiters.splice(0)]) w(result);
            break;
          }
          const info = toErrorInfo(e);
          const unfit = unfitFiles(info);
          if (unfit && unfit.some((f) => !held.has(f)) && (unfitThisRun += unfit.length) <= MAX_UNFIT_PER_RUN) {
            // A file that does not fit stopped the run: it waits (held) and the rest goes on at once.
            await this.holdUnfit(info, unfit, totals);
            this.dirty.addFull();
            this.remoteDirty.addFull();
          } else {
            error = info;
            this.lastError = error;
            this.remoteReady = false;
            this.rememberProblem('error', error);
            this.deps.log.write({
              pair: this.id,
              level: 'error',
              event: 'error',
              msg: `${error.message}${error.fix ? ` Fix: ${error.fix}` : ''}`,
            });
            if (isFatalKind(error.kind)) this.fatal = error;
            // Nothing was recorded for what failed: a full compare later finds it again.
            this.dirty.addFull();
            this.remoteDirty.addFull();
            this.scheduleRetry(error.kind);
          }
        }
        this.progress = undefined;
        // A path that failed is retried by its own back-off and full compares, not by ctime.
        if (totals.warnings.length) this.cleanRun = false;
        const result = this.result(totals, error);
        for (const w of error ? [...waiters, ...this.pendingWaiters.splice(0)] : waiters) w(result);
        if (error) break;
      }
    } finally {
      this.running = false;
      if ((this.stopped || this.stopping) && this.pendingWaiters.length) {
        const r = this.result(emptyTotals(), {
          kind: 'cancelled',
          message: 'lipsync stopped before this sync finished.',
        });
        for (const w of this.pendingWaiters.splice(0)) w(r);
      }
      this.setState();
      // Events that arrived while we were busy.
      if (
        !this.stopped &&
        (!this.dirty.isEmpty() || !this.remoteDirty.isEmpty()) &&
        !this.retryTimer &&
        !this.isPaused()
      )
        this.kick();
      // A large cycle leaves V8's heap grown: give it back once things are quiet.
      else if (!this.stopped) scheduleHeapRelease();
    }
  }

  private scheduleRetry(kind?: ErrorKind): void {
    if (this.retryTimer || this.stopped) return;
    // An unreachable server is tried again every few seconds: it is back within seconds of sshd.
    const delay = kind === 'host-unreachable' ? Math.min(this.retryDelayMs, UNREACHABLE_RETRY_MS) : this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 60_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick(0);
    }, delay);
    this.retryTimer.unref();
  }

  /**
   * After a completed cycle: the paths it named in warnings are retried on their
   * back-off; the failing paths it looked at that did not fail again are healed
   * (their warning goes). Warnings that name no path are kept until the next cycle.
   */
  private pathResults(local: DirtySnapshot, remote: DirtySnapshot, totals: CycleTotals, held: Set<string>): void {
    // N3: a name that is not valid UTF-8 is skipped on purpose, not a failure to retry: its
    // warning stays until a full look at the pair's sides no longer finds that name.
    const skips = totals.warnings.filter(isBadNameNotice);
    for (const w of skips) this.badNames.set(w.message, w);
    if (local.full && (remote.full || this.settings.direction === 'send-only'))
      for (const k of [...this.badNames.keys()]) if (!skips.some((w) => w.message === k)) this.badNames.delete(k);
    const perPath = totals.warnings.filter((w) => w.files?.length && !isBadNameNotice(w));
    const failedNow = new Set(perPath.flatMap((w) => w.files ?? []));
    const healed = this.retries.settle((p) => snapshotCovers(local, p) || snapshotCovers(remote, p), failedNow, held);
    if (healed.length) {
      this.deps.log.write({
        pair: this.id,
        level: 'info',
        event: 'state',
        msg: `synced ${healed.length === 1 ? 'a path' : `${healed.length} paths`} that had failed before`,
        paths: healed.slice(0, 1000),
      });
    }
    for (const w of this.retries.failAll(perPath)) this.logWarning(w);
    // A change seen above a failing path (its folder made writable, space freed there): try it now.
    this.retries.poke((p) => snapshotTouchesAbove(local, p) || snapshotTouchesAbove(remote, p));
    this.warnings = dedupeWarnings(totals.warnings.filter((w) => !w.files?.length));
    this.schedulePathRetries();
  }

  /** Files that did not fit on a full disk: partials removed, a warning each, held until their next try. */
  private async holdUnfit(e: ErrorInfo, files: string[], totals: CycleTotals): Promise<void> {
    const side = fullSide(e, this.settings.local);
    const space = await clearPartials({
      side,
      localRoot: this.settings.local,
      remote: this.remote,
      ssh: this.sshOptions(),
      files,
    }).catch(() => new Map<string, never>());
    for (const f of files) {
      const w = unfitWarning(f, space.get(f), { side, localRoot: this.settings.local, remote: this.remote });
      totals.warnings.push(w);
      if (this.retries.fail(f, w, { hold: true }).news) this.logWarning(w);
    }
    this.schedulePathRetries();
  }

  private logWarning(w: ErrorInfo): void {
    this.deps.log.write({
      pair: this.id,
      level: 'warn',
      event: 'error',
      msg: `${w.message}${w.fix ? ` Fix: ${w.fix}` : ''}`,
      ...(w.files?.length ? { paths: w.files.slice(0, 1000) } : {}),
    });
  }

  /** Puts each failed path back in the dirty sets when its try is due. */
  private schedulePathRetries(): void {
    if (this.pathRetryTimer) clearTimeout(this.pathRetryTimer);
    this.pathRetryTimer = null;
    if (this.stopped || this.stopping) return;
    const ms = this.retries.nextDueInMs();
    if (ms === null) return;
    this.pathRetryTimer = setTimeout(() => {
      this.pathRetryTimer = null;
      const due = this.retries.takeDue();
      for (const p of due) {
        this.dirty.addPath(p);
        this.remoteDirty.addPath(p);
      }
      if (due.length) this.kick(0);
      this.schedulePathRetries();
    }, ms + 20);
    this.pathRetryTimer.unref();
  }

  /** The state database was damaged: it was moved aside and is being rebuilt (StateDb.openOrRebuild). */
  private noteRebuiltDb(movedTo: string, reason: string): void {
    const w: ErrorInfo = {
      kind: 'unknown',
      message: `The state database of this pair was damaged (${reason}). lipsync moved it aside to ${movedTo} and rebuilt it by comparing both sides, as a first sync does: nothing was deleted, and files that differ on the two sides were kept as conflict copies.`,
      fix: `Nothing to do. See \`lipsync conflicts\` for the files that differed; the damaged file can be deleted.`,
    };
    this.notices = [w];
    this.cleanRun = false;
    this.logWarning(w);
  }

  /** Keeps the problem a run ended with, for `lipsync status` without a daemon (cleared by a good run). */
  private rememberProblem(as: 'mass-delete' | 'error', info: ErrorInfo): void {
    this.db?.setMeta(LAST_PROBLEM_META, JSON.stringify({ as, info, at: Date.now() }));
  }

  private recallProblem(): void {
    const p = this.db ? readLastProblem(this.db) : undefined;
    if (!p) return;
    if (p.as === 'mass-delete') this.massDelete = p.info;
    else this.lastError = p.info;
    this.setState();
  }

  /** The totals of the cycle running now (see syncNow). */
  private cycleTotals: CycleTotals | null = null;

  private result(t: CycleTotals, error?: ErrorInfo): SyncPairResult {
    return { pair: this.id, ok: !error, ...t, error };
  }

  private setState(force?: PairState): void {
    const before = this.state;
    if (force) this.state = force;
    else if (this.fatal) this.state = 'error';
    else if (this.running) this.state = 'syncing';
    else if (this.isPaused()) this.state = 'paused';
    else if (this.degraded) this.state = 'degraded';
    else if (this.lastError) this.state = 'error';
    else this.state = 'idle';
    if (before !== this.state) this.deps.onChange?.();
  }

  private fail(e: LipsyncError): void {
    const info = e.toInfo();
    if (this.fatal?.message !== info.message) {
      this.deps.log.write({
        pair: this.id,
        level: 'error',
        event: 'error',
        msg: `${info.message}${info.fix ? ` Fix: ${info.fix}` : ''}`,
      });
    }
    this.fatal = info;
    this.setState();
  }

  // ---------------------------------------------------------------- planning and executing one cycle

  /** The initial-sync mode the pair was added with, while it has never completed a sync (F1–F3). */
  private initialSyncMode(): InitialSyncMode | undefined {
    if (this.lastSyncAt !== null || !this.db || this.db.getMeta('lastSyncAt')) return undefined;
    const mode = this.db.getMeta('initialSync');
    return (INITIAL_SYNC_MODES as readonly string[]).includes(mode ?? '') ? (mode as InitialSyncMode) : undefined;
  }

  private async runCycle(
    local: DirtySnapshot,
    remote: DirtySnapshot,
    totals: CycleTotals,
    held: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    const cycle = new Cycle({
      pair: this.id,
      db: this.requireDb(),
      localRoot: this.settings.local,
      remote: this.remote,
      remoteLabel: this.remote.kind === 'ssh' ? this.remote.host : this.remote.path,
      ssh: this.sshOptions(),
      ops: this.ops,
      caps: this.caps ?? { inotifywait: false, gnuFind: false },
      excluder: holdingExcluder(this.excluder, held),
      direction: this.settings.direction,
      deviceName: this.deps.deviceName,
      bwLimitKBps: this.settings.bwLimitKBps,
      log: this.deps.log,
      totals,
      massDeleteConfirmed: this.massDeleteConfirmed,
      initialSync: this.initialSyncMode(),
      remoteSincePolled: this.remoteFeed?.mode === 'poll',
      localSincePrefetch: this.takeSincePrefetch('local', local),
      remoteSincePrefetch: this.takeSincePrefetch('remote', remote),
      checkPaused: () => {
        if (this.stopped) throw new LipsyncError('cancelled', 'Stopped.');
        if (!this.forcedCycle && this.isPaused()) throw new PausedSignal();
      },
      onProgress: (p) => {
        this.progress = { filesDone: p.filesDone, filesTotal: p.filesTotal, bytesDone: p.bytes, rateBps: p.rateBps };
        if (p.bytesTotal !== undefined) {
          this.progress.bytesTotal = p.bytesTotal;
          const eta = etaSeconds(p.bytesTotal - p.bytes, p.rateBps);
          if (eta !== undefined) this.progress.etaSec = eta;
        }
        if (p.currentFile !== undefined) this.progress.currentFile = p.currentFile;
        for (const l of this.progressListeners) l(this.progress);
      },
      withRemoteLock: (fn) => this.withRemoteLock(fn),
      expectEcho: (paths) => {
        this.echo = paths ? new Set(paths) : null;
      },
      requeueRemote: (path) => this.remoteDirty.addPath(path),
      requeueLocalTree: (path) => this.dirty.addTree(path),
      held: (side, path) => (side === 'local' ? this.localWriting : this.remoteWriting).held(path),
      heldBelow: (dir) => this.localWriting.heldBelow(dir),
      taken: (path) => {
        this.localWriting.taken(path);
        this.remoteWriting.taken(path);
      },
      stagingPrefix: this.remoteMarkerId(),
    });
    await traced('collect', () => cycle.collect(local, remote));
    await traced('mass-delete check', () => cycle.checkMassDelete());
    this.massDeleteConfirmed = false;
    await traced('execute', () => cycle.execute());
  }

  /** A side's clean-stop listing made ahead, if this snapshot asks for that one (taken once). */
  private takeSincePrefetch(side: 'local' | 'remote', snap: DirtySnapshot): Promise<DirtySnapshot | null> | undefined {
    const p = this.sincePrefetch[side];
    this.sincePrefetch[side] = null;
    return p && snap.since === p.token && !snap.full ? p.result : undefined;
  }

  private requireDb(): StateDb {
    if (!this.db) throw new LipsyncError('cancelled', 'The pair is stopping.');
    return this.db;
  }

  /**
   * Several clients sync one remote root: a short lock in its .lipsync/ serialises
   * their writes. A lock whose holder stopped refreshing it for LOCK_TTL_MS is stale
   * and broken by the next client.
   */
  private async withRemoteLock<T>(fn: () => Promise<T>): Promise<T> {
    if (this.lockDepth > 0) {
      this.lockDepth++;
      try {
        return await fn();
      } finally {
        this.lockDepth--;
      }
    }
    const owner = `host=${hostname()} pid=${process.pid} device=${this.deps.deviceName} pair=${this.id} client=${this.clientId}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await traced('lock', () => this.ops.lock(owner, LOCK_TTL_MS));
      if (r.acquired) break;
      if (r.holder && holderIsDeadHere(r.holder)) {
        // Left by a lipsync on this machine that died (kill -9, crash): no need to wait for it to expire.
        await this.ops.unlock(r.holder).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline || this.stopped) {
        throw new LipsyncError(
          'unknown',
          `The server folder is locked by another lipsync client (${r.holder ?? 'unknown'}).`,
          {
            fix: 'lipsync retries by itself; if that client died, the lock expires within a minute.',
          },
        );
      }
      await new Promise((res) => setTimeout(res, 200 + Math.random() * 300));
    }
    this.lockDepth = 1;
    const heartbeat = setInterval(() => void this.ops.refreshLock(owner).catch(() => undefined), LOCK_TTL_MS / 3);
    heartbeat.unref();
    try {
      return await fn();
    } finally {
      clearInterval(heartbeat);
      this.lockDepth = 0;
      await traced('unlock', () => this.ops.unlock(owner)).catch(() => undefined);
    }
  }
}

/**
 * Feeds one watcher event to a side's WriteTracker. Returns true when the event only
 * says a file is being written (created, or written to and not closed): the file is
 * then held, not marked dirty. A close, delete or move ends the hold (the event is
 * then handled as usual).
 */
function noteWriting(t: WriteTracker, ev: { path: string; kind: string; isDir: boolean }): boolean {
  if (ev.isDir) {
    if (ev.kind === 'delete' || ev.kind === 'move-from') t.doneBelow(ev.path);
    return false;
  }
  if (ev.kind === 'create' || ev.kind === 'write') {
    t.writing(ev.path);
    return true;
  }
  if (ev.kind !== 'attrib') t.done(ev.path);
  return false;
}

/** The N3 warning of a name skipped because it is not valid UTF-8 (either side). */
function isBadNameNotice(w: ErrorInfo): boolean {
  return /^Skipped .*not valid UTF-8/.test(w.message);
}

/** A sync's result with the work of the cycle it waited for added (files, bytes, warnings). */
export function withWaitedFor(r: SyncPairResult, t: CycleTotals): SyncPairResult {
  return {
    ...r,
    filesSent: r.filesSent + t.filesSent,
    filesReceived: r.filesReceived + t.filesReceived,
    deleted: r.deleted + t.deleted,
    renamed: r.renamed + t.renamed,
    conflicts: r.conflicts + t.conflicts,
    bytesSent: r.bytesSent + t.bytesSent,
    warnings: [...t.warnings.filter((w) => !r.warnings.some((x) => x.message === w.message)), ...r.warnings],
  };
}

function pausedReason(s: PairSettings): ErrorInfo {
  return {
    kind: 'cancelled',
    message: s.pausedUntil ? `Paused until ${new Date(s.pausedUntil).toLocaleString()}.` : 'Paused until resumed.',
  };
}

/** True when a lock owner text names a process on this host that no longer runs. */
export function holderIsDeadHere(holder: string): boolean {
  const host = /(?:^|\s)host=(\S+)/.exec(holder)?.[1];
  const pid = Number(/(?:^|\s)pid=(\d+)/.exec(holder)?.[1]);
  if (host !== hostname() || !pid || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export function writeLocalMarker(root: string, id: string): void {
  mkdirSync(join(root, '.lipsync'), { recursive: true });
  writeFileSync(join(root, LOCAL_MARKER), id + '\n');
}
