/**
 * One folder pair (PairRunner): its lifecycle (start, stop, new settings, pause),
 * the loop that turns its two dirty sets into cycles, and its status. The parts
 * with one responsibility each are in pair/: every trigger of work (triggers.ts),
 * the server side (server.ts), the clean-stop record, conflicts, the lock, the root
 * checks, the warnings and the last problem.
 *
 * Over ~400 lines on purpose: what is left is the state the lifecycle, the loop and
 * the status all read and write (running, stopping, paused, the problem shown, the
 * waiters of "sync now"); split further, each part would need most of it passed back in.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PairSettings } from '../../shared/settings.js';
import { etaSeconds, type PairState, type PairStatus, type TransferProgress } from '../../shared/status.js';
import type { ErrorInfo } from '../../shared/errors.js';
import { INITIAL_SYNC_MODES, type InitialSyncMode, type SyncPairResult } from '../../shared/api.js';
import type { Excluder, RemoteSpec, SshOptions } from './types.js';
import { StateDb } from './state/db.js';
import { createExcluder } from './excludes.js';
import { DirtySet, type DirtySnapshot } from './dirty.js';
import { createWatcher, WatchStartError, type Watcher, type WatchFailure } from './watch/watcher.js';
import type { WalkSince } from './watch/walkwatch.js';
import { remoteOps, type RemoteOps } from './remote/ops.js';
import { parseRemote } from './remote/spec.js';
import { localChangedSince } from './since.js';
import { Cycle, MassDeleteError, emptyTotals, type CycleTotals } from './cycle.js';
import { LipsyncError, isFatalKind, toErrorInfo } from './errors.js';
import type { ActivityLog } from './log.js';
import { traced } from './trace.js';
import { cancelHeapRelease, scheduleHeapRelease } from './memory.js';
import { WriteTracker } from './writing.js';
import { holdingExcluder } from './retry.js';
import { unfitFiles } from './unfit.js';
import { recordCheckpoint, recordCleanStop, remoteMarkerId, takeCleanStop, type StopFacts } from './pair/clean-stop.js';
import { resolveConflict, type KeepSide } from './pair/conflicts.js';
import { clearLastProblem, readLastProblem, rememberProblem } from './pair/last-problem.js';
import { PairLock } from './pair/lock.js';
import { Triggers, type Trigger } from './pair/triggers.js';
import { PairServer } from './pair/server.js';
import { PairWarnings } from './pair/warnings.js';
import { PairCompression } from './pair/compression.js';
import { localRootProblem } from './pair/roots.js';

export { readLastProblem, type LastProblem } from './pair/last-problem.js';
export { LOCK_TTL_MS, holderIsDeadHere } from './pair/lock.js';
export { MAX_BATCH_WAIT_MS, UNREACHABLE_RETRY_MS } from './pair/triggers.js';

/** How long stop() lets a running cycle finish before cutting it short. */
const STOP_FINISH_MS = 3000;
/** At most one crash checkpoint per this many ms (LIPSYNC_CHECKPOINT_MS; 0: none, for tests). */
const CHECKPOINT_EVERY_MS = Number(process.env.LIPSYNC_CHECKPOINT_MS ?? 30_000);

/** A clean-stop listing made ahead of the cycle that asks for it (by `since` token). */
interface SincePrefetch {
  token: string;
  result: Promise<DirtySnapshot | null>;
}

/** Files held back as not fitting on a full disk in one run of the loop before the disk counts as full for the pair. */
const MAX_UNFIT_PER_RUN = 5;

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
  /** Paths changed here: named by the local watcher, or all (a full compare). */
  private readonly localDirty = new DirtySet();
  /** Paths the server's change feed named. */
  private readonly remoteDirty = new DirtySet();
  /** Files still being written here and on the server: held back until closed or quiet (writing.ts). */
  private readonly localWriting: WriteTracker;
  private readonly remoteWriting: WriteTracker;
  /** The server: connected and checked once, its change feed (pair/server.ts). */
  private readonly server: PairServer;
  private massDeleteConfirmed = false;
  private massDelete: ErrorInfo | undefined;
  private readonly lock: PairLock;
  /** Every reason work starts, and its timers (pair/triggers.ts). */
  private readonly triggers: Triggers;
  private conflictCount = 0;
  private running = false;
  private stopped = false;
  /** stop() was called: no new cycle starts (the running one may finish, see stop). */
  private stopping = false;
  /** The server feed's journal position when the stop began (see stop()). */
  private positionAtStop: string | null = null;
  /** For the clean-stop record: when this run started, and whether anything in it may have been missed. */
  private startedAt = 0;
  private cleanRun = true;
  /** What this run's start looked since: a clean stop, a checkpoint, or neither (everything). */
  private restartedFrom: 'stop' | 'checkpoint' | null = null;
  /** When the last checkpoint of this run was taken (0: none yet), one in flight, the next one's timer. */
  private checkpointAt = 0;
  private checkpointing: Promise<void> | null = null;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private stopCycleFailed = false;
  private pendingWaiters: Waiter[] = [];
  private state: PairState = 'starting';
  private fatal: ErrorInfo | undefined;
  private degraded: ErrorInfo | undefined;
  private lastError: ErrorInfo | undefined;
  /** What the pair warns of, and the per-path retries (pair/warnings.ts). */
  private readonly warnings: PairWarnings;
  /** Whether each transfer compresses (pair/compression.ts). */
  private readonly compression: PairCompression;
  private progress: TransferProgress | undefined;
  private lastSyncAt: number | null = null;
  private readonly progressListeners = new Set<(p: TransferProgress) => void>();
  private cycleDone: Promise<void> = Promise.resolve();
  /** Paths being pushed (see CycleContext.expectEcho): the server watcher's events for them are ours. */
  private pushing: Set<string> | null = null;
  /** What changed since the clean stop, listed ahead: here by start(), on the server by its watcher's first walk. */
  private sincePrefetch: Record<'local' | 'remote', SincePrefetch | null> = { local: null, remote: null };
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
    this.warnings = new PairWarnings(this.id, deps.log);
    this.compression = new PairCompression(
      this.id,
      deps.log,
      () => this.remote,
      () => this.sshOptions(),
      () => this.settings.compression,
    );
    this.server = new PairServer(this.ops, {
      pair: this.id,
      remote: this.remote,
      log: deps.log,
      watch: deps.watch,
      trashDays: deps.trashDays,
      remotePollMs: deps.remotePollMs,
      ssh: () => this.sshOptions(),
      settings: () => this.settings,
      db: () => this.requireDb(),
      excluder: () => this.excluder,
      isStopped: () => this.stopped,
      trigger: (t) => this.trigger(t),
      onFeedState: () => this.deps.onChange?.(),
      onChangedSince: (token, listed) => {
        this.sincePrefetch.remote = { token, result: Promise.resolve(listed) };
      },
    });
    this.lock = new PairLock(this.ops, { deviceName: deps.deviceName, pair: this.id }, () => this.stopped);
    const writeOpts = { quietMs: deps.writeQuietMs ?? 2000, maxDelayMs: deps.writeMaxDelayMs ?? 30_000 };
    this.localWriting = new WriteTracker({
      ...writeOpts,
      onDue: (paths) => this.trigger({ reason: 'writes-done', side: 'local', paths }),
    });
    this.remoteWriting = new WriteTracker({
      ...writeOpts,
      onDue: (paths) => this.trigger({ reason: 'writes-done', side: 'remote', paths }),
    });
    this.triggers = new Triggers({
      localDirty: this.localDirty,
      remoteDirty: this.remoteDirty,
      localWriting: this.localWriting,
      remoteWriting: this.remoteWriting,
      retries: this.warnings.retries,
      debounceMs: deps.debounceMs,
      watch: deps.watch,
      isStopped: () => this.stopped,
      isStopping: () => this.stopping,
      isRunning: () => this.running,
      isPaused: () => this.isPaused(),
      rescanIntervalSec: () => (this.degraded ? this.degradedRescanSec() : this.settings.rescanIntervalSec),
      pushing: () => this.pushing,
      localReportsCloses: () => this.watcher?.backend !== 'parcel',
      onPausedTrigger: () => this.setState(),
      startRun: (force) => {
        this.cycleDone = this.loop(force);
      },
    });
  }

  /** Something that starts work happened (pair/triggers.ts lists them all). */
  private trigger(t: Trigger): void {
    this.triggers.fire(t);
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
    this.warnings.clearNotices();
    const opened = StateDb.openOrRebuild(this.deps.stateDbFile);
    this.db = opened.db;
    if (opened.damaged) this.noteRebuiltDb(opened.damaged.movedTo, opened.damaged.reason);
    const last = this.db.getMeta('lastSyncAt');
    this.lastSyncAt = last ? Number(last) : null;
    if (!this.checkLocalRoot()) return;
    const clean = takeCleanStop(this.db, this.settings);
    this.restartedFrom = clean?.kind ?? null;
    this.checkpointAt = 0;
    // After a clean stop, or a crash after a checkpoint, the watchers' first walks also list
    // what changed since it (docs/sync-semantics.md, "Restart after a clean stop" and
    // "Restart after a crash"): one walk per side; on the server none when its follower can
    // resume at the journal position recorded with it (J8).
    this.server.watchSince(clean?.remoteMarker ?? null, clean?.remotePos ?? null);
    // The ssh connection and the server's checks start now, alongside the local watcher.
    if (this.deps.watch && !this.isPaused()) this.server.prepare().catch(() => undefined);
    if (this.deps.watch)
      await traced('local watcher start', () => this.startWatcher(clean ? { ms: clean.localSinceMs } : null));
    this.triggers.scheduleRescans();
    this.setState();
    this.conflictCount = this.db.openConflicts().length;
    // Without a daemon (a one-shot command), the pair shows the problem its last run ended with.
    if (!this.deps.watch) this.recallProblem();
    if (this.deps.watch) {
      // Find what changed while nobody was watching: after a clean stop, what changed
      // since it; else compare both sides with the database.
      let localSince: string | null = null;
      if (clean) {
        const token = String(clean.localSinceMs);
        localSince = token;
        const listed = this.watcher?.changedSince?.();
        // Listed by the watcher's walk; else one find, which needs no server: it runs
        // while the server is being connected.
        const result =
          listed !== undefined
            ? Promise.resolve(listed)
            : traced('local changed since', () => localChangedSince(this.settings.local, clean.localSinceMs));
        result.catch(() => undefined);
        this.sincePrefetch.local = { token, result };
      }
      this.trigger({ reason: 'start', localSince, remoteSince: clean?.remoteMarker ?? null });
    }
  }

  /** This pair's stable change marker on the server (.lipsync/poll-marker-ID), kept in the database. */
  private remoteMarkerId(): string {
    return remoteMarkerId(this.requireDb());
  }

  async stop(): Promise<void> {
    // No new cycle from now; one that is running gets a moment to finish, so a stop
    // during a short sync is still clean (the next start then looks only at changes).
    this.stopping = true;
    // A file held because it was still being written is not in the base: not a clean stop.
    if (this.localWriting.size || this.remoteWriting.size) this.cleanRun = false;
    this.localWriting.stop();
    this.remoteWriting.stop();
    // The journal position a clean stop records (J8): what the feed hands over from now on no
    // longer reaches the dirty sets, so it must come after this position.
    this.positionAtStop = this.server.position;
    this.triggers.stop();
    clearTimeout(this.checkpointTimer);
    await this.checkpointing;
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
    await this.server.stop();
    await this.cycleDone.catch(() => undefined);
    if (this.db) await recordCleanStop(this.db, this.stopFacts()).catch(() => undefined);
    await this.ops.close().catch(() => undefined);
    this.db?.close();
    this.db = null;
  }

  /**
   * Quiet after a sync: a checkpoint (pair/clean-stop.ts), so that a crash from now on
   * costs a look at what changed since, not a compare of everything. At most one per
   * checkpoint interval, and only when something was synced since the last one.
   */
  private checkpointWhenQuiet(): void {
    if (!this.deps.watch || CHECKPOINT_EVERY_MS <= 0 || !this.db) return;
    if (this.stopped || this.stopping || this.running || this.checkpointing) return;
    if (this.lastSyncAt === null || this.lastSyncAt <= this.checkpointAt) return;
    clearTimeout(this.checkpointTimer);
    const wait = this.checkpointAt + CHECKPOINT_EVERY_MS - Date.now();
    if (wait > 0) {
      this.checkpointTimer = setTimeout(() => this.checkpointWhenQuiet(), wait);
      this.checkpointTimer.unref();
      return;
    }
    const startedAt = Date.now();
    let written = false;
    this.checkpointing = recordCheckpoint(this.db, this.stopFacts())
      .then(
        (ok) => {
          written = ok;
          if (ok) this.checkpointAt = startedAt;
        },
        () => undefined,
      )
      .finally(() => {
        this.checkpointing = null;
        // A sync that ended while this one was being written gets the next one (timed).
        if (written && !this.running) this.checkpointWhenQuiet();
      });
  }

  /** What the clean-stop record and checkpoints are decided on (pair/clean-stop.ts). */
  private stopFacts(): StopFacts {
    return {
      watch: this.deps.watch,
      cleanRun: this.cleanRun,
      cycleCutShort: this.stopCycleFailed,
      startedAt: this.startedAt,
      lastSyncAt: this.lastSyncAt,
      nothingPending: this.localDirty.isEmpty() && this.remoteDirty.isEmpty(),
      holding: this.localWriting.size > 0 || this.remoteWriting.size > 0,
      problem: !!(this.lastError || this.fatal || this.massDelete || this.degraded || this.isPaused()),
      settings: this.settings,
      remote: {
        spec: this.remote,
        ssh: this.sshOptions(),
        ready: this.server.ready,
        caps: this.server.capsKnown,
        feed: this.server.feed,
        position: this.stopping ? this.positionAtStop : this.server.position,
      },
    };
  }

  /** New settings for this pair (excludes, bandwidth, pause...). */
  async update(settings: PairSettings): Promise<void> {
    const excludesChanged = JSON.stringify(settings.excludes) !== JSON.stringify(this.settings.excludes);
    const wasPaused = this.isPaused();
    this.settings = settings;
    if (excludesChanged) this.excluder = createExcluder(settings.excludes);
    this.trigger({ reason: 'settings', resumed: wasPaused && !this.isPaused(), excludesChanged });
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
      // A cycle already running does work this caller waits for: its totals count too
      // (else `lipsync sync` said "0 files sent" after waiting on the daemon's own transfer).
      const carry = this.running ? this.cycleTotals : null;
      this.pendingWaiters.push(carry ? (r) => resolve(withWaitedFor(r, carry)) : resolve);
      this.forceRequested = true;
      this.trigger({ reason: 'sync-now' });
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
      remoteWatcher: this.server.feed ? (this.server.feed.connected ? this.server.feed.mode : 'disconnected') : 'none',
      conflicts: this.conflictCount,
      entries: this.db ? this.db.count(this.running ? 1000 : 0) : 0,
      pending:
        this.localDirty.size === Number.POSITIVE_INFINITY || this.remoteDirty.size === Number.POSITIVE_INFINITY
          ? -1
          : this.localDirty.size + this.remoteDirty.size,
      lastSyncAt: this.lastSyncAt,
      lastError: this.lastError,
      progress: this.progress,
      warnings: this.warnings.shown(),
    };
  }

  // ---------------------------------------------------------------- safety checks

  /** The local root must exist and be this pair's folder (pair/roots.ts); never read a missing root as "all deleted". */
  private checkLocalRoot(): boolean {
    const problem = localRootProblem(this.settings.local, this.id, !!this.db && this.db.count() > 0);
    if (problem) {
      this.fail(problem);
      return false;
    }
    if (this.fatal?.kind === 'local-missing') this.fatal = undefined;
    return true;
  }

  /** The user confirmed a mass deletion: the next cycle may delete past the threshold. */
  confirm(): void {
    this.massDeleteConfirmed = true;
    this.massDelete = undefined;
    this.setState();
    this.trigger({ reason: 'confirm' });
  }

  openConflicts() {
    return this.db ? this.db.openConflicts() : [];
  }

  /** Settles conflict `id`: keep the local version (the copy), the remote one (the name), or both (pair/conflicts.ts). */
  async resolve(id: number, keep: KeepSide): Promise<void> {
    const db = this.requireDb();
    const settled = resolveConflict(db, this.settings.local, id, keep);
    this.conflictCount = db.openConflicts().length;
    this.deps.log.write({
      pair: this.id,
      level: 'info',
      event: 'conflict',
      msg: `conflict ${id} (${settled.path}) resolved: kept ${keep}`,
    });
    this.trigger({ reason: 'resolve', paths: settled.paths });
    this.setState();
  }

  // ---------------------------------------------------------------- watching

  private async startWatcher(since: WalkSince = null): Promise<void> {
    try {
      const watcher = await createWatcher(
        this.settings.local,
        {
          onEvents: (events) => this.trigger({ reason: 'local-events', events }),
          onOverflow: () => this.trigger({ reason: 'local-overflow' }),
          onError: (f) => this.watcherFailed(f),
        },
        { excluder: this.excluder, inotifywaitPath: this.deps.inotifywaitPath, since },
      );
      await watcher.start();
      this.watcher = watcher;
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
    this.triggers.scheduleRescans();
    this.setState();
    if (restart && !this.stopped && kind === 'watcher-died') {
      // Try again later; events were missed meanwhile, so rescan once it is back.
      setTimeout(() => {
        if (this.stopped || this.watcher) return;
        void this.startWatcher().then(() => {
          if (this.watcher) this.trigger({ reason: 'local-watcher-back' });
        });
      }, 5000).unref();
    }
  }

  private degradedRescanSec(): number {
    return Math.min(this.settings.rescanIntervalSec, 60);
  }

  // ---------------------------------------------------------------- the loop

  /**
   * One run: cycles while either dirty set names something (and the pair is not
   * paused, unless the user forced the run). Started by a trigger (pair/triggers.ts).
   */
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
        (!this.localDirty.isEmpty() || !this.remoteDirty.isEmpty()) &&
        (force || this.forceRequested || !this.isPaused())
      ) {
        if (!first && !force && !this.forceRequested && this.deps.debounceMs > 0) {
          // Events that came during the last cycle: let a burst still going on settle first.
          await this.triggers.settle();
          if (this.stopped || this.stopping) break;
        }
        first = false;
        this.forcedCycle = force || this.forceRequested;
        this.forceRequested = false;
        force = false;
        const waiters = this.pendingWaiters;
        this.pendingWaiters = [];
        const localSnapshot = this.localDirty.take();
        const remoteSnapshot = this.remoteDirty.take();
        // Files that did not fit on a full disk stay out until their next try (retry.ts).
        const held = this.warnings.retries.held();
        this.setState('syncing');
        const totals: CycleTotals = emptyTotals();
        this.cycleTotals = totals;
        let error: ErrorInfo | undefined;
        try {
          if (!this.checkLocalRoot())
            throw new LipsyncError(this.fatal!.kind, this.fatal!.message, { fix: this.fatal!.fix });
          await traced('prepare remote', () => this.server.prepare());
          await traced('cycle', () => this.runCycle(localSnapshot, remoteSnapshot, totals, held));
          const wholeSides = localSnapshot.full && (remoteSnapshot.full || this.settings.direction === 'send-only');
          this.warnings.afterCycle(localSnapshot, remoteSnapshot, totals, held, wholeSides);
          this.triggers.schedulePathRetries();
          unfitThisRun = 0;
          this.conflictCount = this.db ? this.db.openConflicts().length : 0;
          this.lastSyncAt = Date.now();
          this.db?.setMeta('lastSyncAt', String(this.lastSyncAt));
          this.lastError = undefined;
          if (this.fatal && this.fatal.kind !== 'local-missing') this.fatal = undefined;
          this.triggers.cycleSucceeded();
          if (this.db) clearLastProblem(this.db);
        } catch (e) {
          if (e instanceof PausedSignal) {
            // Paused mid-cycle: what was done is recorded; the rest is found again on resume.
            this.localDirty.addFull();
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
            this.localDirty.addFull();
            this.remoteDirty.addFull();
            const result = this.result(totals, this.massDelete);
            // Everyone waiting gets the answer now, also who asked during this cycle.
            for (const waiter of [...waiters, ...this.pendingWaiters.splice(0)]) waiter(result);
            break;
          }
          const info = toErrorInfo(e);
          const unfit = unfitFiles(info);
          if (unfit && unfit.some((f) => !held.has(f)) && (unfitThisRun += unfit.length) <= MAX_UNFIT_PER_RUN) {
            // A file that does not fit stopped the run: it waits (held) and the rest goes on at once.
            await this.warnings.holdUnfit(info, unfit, totals, {
              localRoot: this.settings.local,
              remote: this.remote,
              ssh: this.sshOptions(),
            });
            this.triggers.schedulePathRetries();
            this.localDirty.addFull();
            this.remoteDirty.addFull();
          } else {
            error = info;
            this.lastError = error;
            this.server.lost();
            this.rememberProblem('error', error);
            this.deps.log.write({
              pair: this.id,
              level: 'error',
              event: 'error',
              msg: `${error.message}${error.fix ? ` Fix: ${error.fix}` : ''}`,
            });
            if (isFatalKind(error.kind)) this.fatal = error;
            // Nothing was recorded for what failed: a full compare later finds it again.
            this.localDirty.addFull();
            this.remoteDirty.addFull();
            this.triggers.cycleFailed(error.kind);
          }
        }
        this.progress = undefined;
        // A path that failed is retried by its own back-off and full compares, not by ctime.
        if (totals.warnings.length) this.cleanRun = false;
        const result = this.result(totals, error);
        for (const waiter of error ? [...waiters, ...this.pendingWaiters.splice(0)] : waiters) waiter(result);
        if (error) break;
      }
    } finally {
      this.running = false;
      if ((this.stopped || this.stopping) && this.pendingWaiters.length) {
        const r = this.result(emptyTotals(), {
          kind: 'cancelled',
          message: 'lipsync stopped before this sync finished.',
        });
        for (const waiter of this.pendingWaiters.splice(0)) waiter(r);
      }
      this.setState();
      // Events that arrived while we were busy start the next run; else, a large cycle
      // leaves V8's heap grown: give it back once things are quiet.
      if (!this.triggers.runEnded() && !this.stopped) {
        scheduleHeapRelease();
        this.checkpointWhenQuiet();
      }
    }
  }

  /** The state database was damaged: it was moved aside and is being rebuilt (StateDb.openOrRebuild). */
  private noteRebuiltDb(movedTo: string, reason: string): void {
    const w: ErrorInfo = {
      kind: 'unknown',
      message: `The state database of this pair was damaged (${reason}). lipsync moved it aside to ${movedTo} and rebuilt it by comparing both sides, as a first sync does: nothing was deleted, and files that differ on the two sides were kept as conflict copies.`,
      fix: `Nothing to do. See \`lipsync conflicts\` for the files that differed; the damaged file can be deleted.`,
    };
    this.cleanRun = false;
    this.warnings.setNotice(w);
  }

  /** Keeps the problem a run ended with, for `lipsync status` without a daemon (cleared by a good run). */
  private rememberProblem(as: 'mass-delete' | 'error', info: ErrorInfo): void {
    if (this.db) rememberProblem(this.db, as, info);
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
      caps: this.server.caps,
      excluder: holdingExcluder(this.excluder, held),
      direction: this.settings.direction,
      deviceName: this.deps.deviceName,
      bwLimitKBps: this.settings.bwLimitKBps,
      compress: () => this.compression.decide(),
      log: this.deps.log,
      totals,
      massDeleteConfirmed: this.massDeleteConfirmed,
      initialSync: this.initialSyncMode(),
      // In poll mode the feed's first poll lists since the pair's own marker: the cycle need
      // not, unless it lists since a checkpoint's.
      remoteSincePolled: this.server.feed?.mode === 'poll' && remote.since === this.remoteMarkerId(),
      restartedFrom: this.restartedFrom,
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
      withRemoteLock: (fn) => this.lock.with(fn),
      lockForScript: () => this.lock.forScript(),
      remoteMetaFresh: () => this.lock.metaFresh(),
      expectEcho: (paths) => {
        this.pushing = paths ? new Set(paths) : null;
      },
      requeueRemote: (path) => this.remoteDirty.addPath(path),
      requeueLocalTree: (path) => this.localDirty.addTree(path),
      held: (side, path) => (side === 'local' ? this.localWriting : this.remoteWriting).held(path),
      heldBelow: (dir) => this.localWriting.heldBelow(dir),
      remoteHeldBelow: (dir) => this.remoteWriting.heldBelow(dir),
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
}

/** The N3 warning of a name skipped because it is not valid UTF-8 (either side). */
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
