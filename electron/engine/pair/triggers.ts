/**
 * Every reason a pair's work starts, in one place (as Syncthing's folder.Serve
 * lists its scan and pull triggers in one `select`). Work is one run of the
 * pair's loop: cycles until both dirty sets are empty (pair.ts). A trigger marks
 * what to look at in the dirty sets and asks for that run:
 *
 *   trigger                      marks                          run
 *   start                        since the clean stop, or all   now
 *   local-events (watcher)       the paths (files being         after the events settle
 *                                written are held, writing.ts)
 *   local-overflow (watcher)     all here                       after the events settle
 *   local-watcher-back           all here                       after the events settle
 *   remote-changes (server feed) the paths (echoes of our       after the events settle
 *                                pushes and files being          (when a path was new)
 *                                written are left out)
 *   remote-rescan (server feed)  all on the server              after the events settle
 *   writes-done (writing.ts)     the files now closed or quiet  after the events settle
 *   periodic-rescan (timer)      all here                       now
 *   path-retries-due (retry.ts)  the failed paths due, both     now
 *   cycle-retry-due (timer)      (marked all when it failed)    now
 *   left-over (end of a run)     (came during the run)          after the events settle
 *   sync-now (user)              all, both sides                now, even if paused
 *   confirm (user, mass delete)  all, both sides                now, even if paused
 *   resolve (user, conflict)     the conflict's two paths       now, even if paused
 *   settings (user: resume,      all here, when the excludes    now, when resumed or
 *     new excludes)              changed                        the excludes changed
 *
 * "After the events settle": a batch goes when no new trigger came for the
 * debounce (20 ms by default), or MAX_BATCH_WAIT_MS after its first one while a
 * burst goes on. One saved file is thus on its way within milliseconds, and a
 * burst (a copy, an `rm -r`) goes as few large batches, which the mass-delete
 * check sees whole. A paused pair runs nothing except what the user asked for.
 *
 * The timers behind the timed triggers are here too: the periodic rescan, the
 * retry of a failed cycle (back-off; an unreachable server every few seconds),
 * and the per-path retries.
 */
import type { ErrorKind } from '../../../shared/errors.js';
import type { DirtySet } from '../dirty.js';
import type { WatchEvent } from '../watch/watcher.js';
import type { RemoteChange } from '../remote/watch.js';
import type { WriteTracker } from '../writing.js';
import type { PathRetries } from '../retry.js';
import { cancelHeapRelease } from '../memory.js';

/** The longest a batch waits for a burst of events to settle before it goes anyway. */
export const MAX_BATCH_WAIT_MS = 1000;
/** While the server cannot be reached, a reconnect is tried this often (a refused connection costs nothing). */
export const UNREACHABLE_RETRY_MS = 2000;
/** The first retry of a failed cycle; it doubles per failure up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;

export type Trigger =
  | { reason: 'start'; localSince: string | null; remoteSince: string | null }
  | { reason: 'local-events'; events: WatchEvent[] }
  | { reason: 'local-overflow' }
  | { reason: 'local-watcher-back' }
  | { reason: 'remote-changes'; changes: RemoteChange[] }
  | { reason: 'remote-rescan' }
  | { reason: 'writes-done'; side: 'local' | 'remote'; paths: string[] }
  | { reason: 'periodic-rescan' }
  | { reason: 'path-retries-due'; paths: string[] }
  | { reason: 'cycle-retry-due' }
  | { reason: 'left-over' }
  | { reason: 'sync-now' }
  | { reason: 'confirm' }
  | { reason: 'resolve'; paths: string[] }
  | { reason: 'settings'; resumed: boolean; excludesChanged: boolean };

/** What the scheduler reads of and asks from its pair. */
export interface TriggerHost {
  readonly localDirty: DirtySet;
  readonly remoteDirty: DirtySet;
  readonly localWriting: WriteTracker;
  readonly remoteWriting: WriteTracker;
  readonly retries: PathRetries;
  readonly debounceMs: number;
  /** The pair runs with watchers (a daemon), not as a one-shot command. */
  readonly watch: boolean;
  /** stop() finished cutting the pair off. */
  isStopped(): boolean;
  /** stop() was called: no new run starts. */
  isStopping(): boolean;
  isRunning(): boolean;
  isPaused(): boolean;
  rescanIntervalSec(): number;
  /** Paths being pushed now: the server feed's events for them are our own. */
  pushing(): ReadonlySet<string> | null;
  /** The local watcher reports closes (parcel does not: then no file is held as being written). */
  localReportsCloses(): boolean;
  /** A trigger came while paused: the pair's state may show it. */
  onPausedTrigger(): void;
  /** Starts one run of the loop (force: even if paused). */
  startRun(force: boolean): void;
}

export class Triggers {
  private batchTimer: NodeJS.Timeout | null = null;
  /** When the last trigger came, and when the batch waiting for it began (see runSoon). */
  private lastTriggerAt = 0;
  private batchStartedAt = 0;
  private rescanTimer: NodeJS.Timeout | null = null;
  private cycleRetryTimer: NodeJS.Timeout | null = null;
  private cycleRetryMs = FIRST_RETRY_MS;
  private pathRetryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly host: TriggerHost) {}

  /** THE list: what each trigger marks, and when the run it asks for starts. */
  fire(t: Trigger): void {
    const h = this.host;
    const debounce = h.debounceMs;
    switch (t.reason) {
      case 'start':
        if (t.localSince !== null) h.localDirty.addSince(t.localSince);
        else h.localDirty.addFull();
        if (t.remoteSince !== null) h.remoteDirty.addSince(t.remoteSince);
        else h.remoteDirty.addFull();
        return this.runSoon(0);
      case 'local-events':
        for (const event of t.events) {
          // A file still being written waits for its close (or quiet); parcel reports no closes.
          if (h.localReportsCloses() && noteWriting(h.localWriting, event)) continue;
          if (event.isDir && (event.kind === 'create' || event.kind === 'move-to')) h.localDirty.addTree(event.path);
          else h.localDirty.addPath(event.path);
        }
        return this.runSoon(debounce);
      case 'local-overflow':
      case 'local-watcher-back':
        h.localDirty.addFull();
        return this.runSoon(debounce);
      case 'remote-changes': {
        let fresh = 0;
        const pushing = h.pushing();
        for (const change of t.changes) {
          // Our own push, reported back: the stat after the push records that state.
          if (pushing?.has(change.path) && change.kind !== 'delete' && change.kind !== 'move-from') continue;
          // A file still being written on the server waits for its close (or quiet).
          if (noteWriting(h.remoteWriting, change)) continue;
          fresh++;
          if (change.isDir && (change.kind === 'create' || change.kind === 'move-to'))
            h.remoteDirty.addTree(change.path);
          else if (change.isDir && change.kind === 'modify') h.remoteDirty.markDir(change.path);
          else h.remoteDirty.addPath(change.path);
        }
        if (fresh) this.runSoon(debounce);
        return;
      }
      case 'remote-rescan':
        h.remoteDirty.addFull();
        return this.runSoon(debounce);
      case 'writes-done':
        for (const path of t.paths) (t.side === 'local' ? h.localDirty : h.remoteDirty).addPath(path);
        return this.runSoon(debounce);
      case 'periodic-rescan':
        h.localDirty.addFull();
        return this.runSoon(0);
      case 'path-retries-due':
        for (const path of t.paths) {
          h.localDirty.addPath(path);
          h.remoteDirty.addPath(path);
        }
        if (t.paths.length) this.runSoon(0);
        return;
      case 'cycle-retry-due':
        return this.runSoon(0);
      case 'left-over':
        return this.runSoon(debounce);
      case 'sync-now':
      case 'confirm':
        h.localDirty.addFull();
        h.remoteDirty.addFull();
        return this.runSoon(0, true);
      case 'resolve':
        for (const path of t.paths) h.localDirty.addPath(path);
        return this.runSoon(0, true);
      case 'settings':
        if (t.excludesChanged) h.localDirty.addFull();
        // The rescan interval may have changed.
        this.scheduleRescans();
        // New excludes: compare both sides now, not at the next rescan (an hour later).
        if (t.resumed || t.excludesChanged) this.runSoon(0);
        return;
    }
  }

  /**
   * Asks for a run of the loop once triggers have settled (or now, with delay 0):
   * see the top of this file.
   */
  private runSoon(delayMs: number, force = false): void {
    const h = this.host;
    if (h.isStopped() || h.isStopping()) return;
    if (h.isPaused() && !force) {
      h.onPausedTrigger();
      return;
    }
    this.lastTriggerAt = Date.now();
    cancelHeapRelease(); // not quiet any more
    if (h.isRunning()) return; // the loop looks again when the cycle ends
    if (this.batchTimer && delayMs > 0) return; // the pending batch takes this event too
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchStartedAt = this.lastTriggerAt;
    const go = (): void => {
      const wait = delayMs > 0 ? this.settleWait(delayMs) : 0;
      if (wait > 0) {
        this.batchTimer = setTimeout(go, wait);
        return;
      }
      this.batchTimer = null;
      h.startRun(force);
    };
    this.batchTimer = setTimeout(go, delayMs);
  }

  /** How much longer a batch should wait for triggers to settle (0: go now). */
  private settleWait(quietMs: number): number {
    const now = Date.now();
    if (now - this.batchStartedAt >= MAX_BATCH_WAIT_MS) return 0;
    const quietFor = now - this.lastTriggerAt;
    return quietFor >= quietMs ? 0 : Math.min(quietMs - quietFor, MAX_BATCH_WAIT_MS - (now - this.batchStartedAt));
  }

  /** Inside a run, before its next cycle: lets a burst of triggers that came during the last cycle settle. */
  async settle(): Promise<void> {
    const quietMs = this.host.debounceMs;
    this.batchStartedAt = Date.now();
    for (let wait = this.settleWait(quietMs); wait > 0; wait = this.settleWait(quietMs))
      await new Promise((r) => setTimeout(r, wait));
  }

  /** A run just ended: what came during it runs next (unless a retry of a failure waits, or paused). */
  runEnded(): boolean {
    const h = this.host;
    if (
      !h.isStopped() &&
      (!h.localDirty.isEmpty() || !h.remoteDirty.isEmpty()) &&
      !this.cycleRetryTimer &&
      !h.isPaused()
    ) {
      this.fire({ reason: 'left-over' });
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- the timers behind timed triggers

  /** The periodic rescan of the local side, every `rescanIntervalSec`. */
  scheduleRescans(): void {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.host.isStopped() || !this.host.watch) return;
    this.rescanTimer = setInterval(
      () => this.fire({ reason: 'periodic-rescan' }),
      this.host.rescanIntervalSec() * 1000,
    );
    this.rescanTimer.unref();
  }

  /** A cycle failed: it is tried again after a back-off (an unreachable server every few seconds). */
  cycleFailed(kind?: ErrorKind): void {
    if (this.cycleRetryTimer || this.host.isStopped()) return;
    // An unreachable server is tried again every few seconds: it is back within seconds of sshd.
    const delay = kind === 'host-unreachable' ? Math.min(this.cycleRetryMs, UNREACHABLE_RETRY_MS) : this.cycleRetryMs;
    this.cycleRetryMs = Math.min(this.cycleRetryMs * 2, MAX_RETRY_MS);
    this.cycleRetryTimer = setTimeout(() => {
      this.cycleRetryTimer = null;
      this.fire({ reason: 'cycle-retry-due' });
    }, delay);
    this.cycleRetryTimer.unref();
  }

  /** A cycle completed: the back-off of failed cycles starts over. */
  cycleSucceeded(): void {
    this.cycleRetryMs = FIRST_RETRY_MS;
  }

  /** Puts each failed path back in the dirty sets when its try is due (retry.ts). */
  schedulePathRetries(): void {
    if (this.pathRetryTimer) clearTimeout(this.pathRetryTimer);
    this.pathRetryTimer = null;
    if (this.host.isStopped() || this.host.isStopping()) return;
    const ms = this.host.retries.nextDueInMs();
    if (ms === null) return;
    this.pathRetryTimer = setTimeout(() => {
      this.pathRetryTimer = null;
      this.fire({ reason: 'path-retries-due', paths: this.host.retries.takeDue() });
      this.schedulePathRetries();
    }, ms + 20);
    this.pathRetryTimer.unref();
  }

  /** At stop: no timer fires any more. */
  stop(): void {
    for (const t of [this.batchTimer, this.rescanTimer, this.cycleRetryTimer, this.pathRetryTimer])
      if (t) clearTimeout(t);
    this.batchTimer = this.rescanTimer = this.cycleRetryTimer = this.pathRetryTimer = null;
  }
}

/**
 * Feeds one watcher event to a side's WriteTracker. Returns true when the event only
 * says a file is being written (created, or written to and not closed): the file is
 * then held, not marked dirty. A close, delete or move ends the hold (the event is
 * then handled as usual).
 */
function noteWriting(tracker: WriteTracker, event: { path: string; kind: string; isDir: boolean }): boolean {
  if (event.isDir) {
    if (event.kind === 'delete' || event.kind === 'move-from') tracker.doneBelow(event.path);
    return false;
  }
  if (event.kind === 'create' || event.kind === 'write') {
    tracker.writing(event.path);
    return true;
  }
  if (event.kind !== 'attrib') tracker.done(event.path);
  return false;
}
