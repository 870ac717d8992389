import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PairSettings } from '../../shared/settings.js';
import type { PairState, PairStatus, TransferProgress } from '../../shared/status.js';
import type { ErrorInfo } from '../../shared/errors.js';
import type { SyncPairResult } from '../../shared/api.js';
import type { Entry, Excluder, LocalStat, RemoteSpec, SshOptions } from './types.js';
import { StateDb } from './state/db.js';
import { compareDir, hashFile, isRacy, lstatLocal, sameAsEntry, type ScanChange } from './scan.js';
import { createExcluder } from './excludes.js';
import { DirtySet, isUnder, joinPath } from './dirty.js';
import { createWatcher, WatchStartError, type Watcher, type WatchFailure } from './watch/watcher.js';
import { rsyncPush } from './remote/rsync.js';
import { remoteOps, type RemoteOps } from './remote/ops.js';
import { parseRemote } from './remote/spec.js';
import { LipsyncError, toErrorInfo } from './errors.js';
import type { ActivityLog } from './log.js';

/** Paths per rsync run: bounds memory on both ends (rsync keeps its file list in memory). */
export const BATCH_CAP = 5000;
const LOCAL_MARKER = join('.lipsync', 'pair-id');

export interface PairDeps {
  stateDbFile: string;
  ssh: SshOptions;
  log: ActivityLog;
  debounceMs: number;
  /** Override for tests and unusual systems: path of inotifywait. */
  inotifywaitPath?: string;
  /** Run without a watcher (one-shot `lipsync sync` without a daemon). */
  watch: boolean;
  onChange?: () => void;
}

interface CycleTotals {
  filesSent: number;
  deleted: number;
  renamed: number;
  bytesSent: number;
  warnings: ErrorInfo[];
}

type Waiter = (r: SyncPairResult) => void;

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

function trashDirName(d = new Date()): string {
  const iso = d.toISOString(); // 2026-11-25T13:30:12.345Z
  const day = iso.slice(0, 10);
  const time = iso.slice(11, 23).replace(/[:.]/g, '');
  return `.lipsync/trash/${day}/${time}`;
}

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
  private running = false;
  private stopped = false;
  private kickTimer: NodeJS.Timeout | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = 1000;
  private pendingWaiters: Waiter[] = [];
  private state: PairState = 'starting';
  private fatal: ErrorInfo | undefined;
  private degraded: ErrorInfo | undefined;
  private lastError: ErrorInfo | undefined;
  private warnings: ErrorInfo[] = [];
  private progress: TransferProgress | undefined;
  private lastSyncAt: number | null = null;
  private remoteReady = false;
  private readonly progressListeners = new Set<(p: TransferProgress) => void>();
  private cycleDone: Promise<void> = Promise.resolve();
  /** The running cycle was asked for by "sync now": a pause does not interrupt it. */
  private forcedCycle = false;

  constructor(
    settings: PairSettings,
    private readonly deps: PairDeps,
  ) {
    this.id = settings.id;
    this.settings = settings;
    this.remote = parseRemote(settings.remote);
    this.ops = remoteOps(this.remote, this.sshOptions());
    this.excluder = createExcluder(settings.excludes);
  }

  private sshOptions(): SshOptions {
    return { ...this.deps.ssh, identityFile: this.settings.identityFile ?? this.deps.ssh.identityFile };
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    this.stopped = false;
    mkdirSync(join(this.deps.stateDbFile, '..'), { recursive: true, mode: 0o700 });
    this.db = StateDb.open(this.deps.stateDbFile);
    const last = this.db.getMeta('lastSyncAt');
    this.lastSyncAt = last ? Number(last) : null;
    if (!this.checkLocalRoot()) return;
    if (this.deps.watch) await this.startWatcher();
    this.scheduleRescans();
    this.setState();
    if (this.deps.watch) {
      // Find what changed while nobody was watching: compare the disk with the database.
      this.dirty.addFull();
      this.kick(0);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [this.kickTimer, this.rescanTimer, this.retryTimer]) if (t) clearTimeout(t);
    this.kickTimer = this.rescanTimer = this.retryTimer = null;
    await this.watcher?.stop().catch(() => undefined);
    this.watcher = null;
    await this.cycleDone.catch(() => undefined);
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
    if (wasPaused && !this.isPaused()) this.kick(0);
    this.setState();
  }

  isPaused(): boolean {
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
        resolve(this.result({ filesSent: 0, deleted: 0, renamed: 0, bytesSent: 0, warnings: [] }, this.fatal));
        return;
      }
      this.dirty.addFull();
      this.pendingWaiters.push(resolve);
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
      reason: this.fatal ?? this.degraded ?? (this.isPaused() ? pausedReason(this.settings) : undefined),
      pausedUntil: this.settings.pausedUntil,
      watcher: this.watcher ? this.watcher.backend : 'none',
      entries: this.db ? this.db.count() : 0,
      pending: this.dirty.size === Number.POSITIVE_INFINITY ? -1 : this.dirty.size,
      lastSyncAt: this.lastSyncAt,
      lastError: this.lastError,
      progress: this.progress,
      warnings: this.warnings.slice(-20),
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

  private async prepareRemote(): Promise<void> {
    if (this.remoteReady) return;
    const probe = await this.ops.probe();
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
    const marker = await this.ops.readMarker();
    if (marker !== null && marker !== this.id) {
      throw new LipsyncError(
        'remote-not-dir',
        `The remote folder ${this.settings.remote} belongs to another lipsync pair (${marker}).`,
        {
          fix: 'Pick another remote folder.',
        },
      );
    }
    await this.ops.prepareMeta();
    if (marker === null) await this.ops.writeMarker(this.id);
    this.remoteReady = true;
  }

  // ---------------------------------------------------------------- watching

  private async startWatcher(): Promise<void> {
    try {
      const w = await createWatcher(
        this.settings.local,
        {
          onEvents: (events) => {
            for (const ev of events) {
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
        { excluder: this.excluder, inotifywaitPath: this.deps.inotifywaitPath },
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

  /** Ask the loop to run after the debounce delay (or now). */
  private kick(delayMs = this.deps.debounceMs, force = false): void {
    if (this.stopped) return;
    if (this.isPaused() && !force) {
      this.setState();
      return;
    }
    if (this.running) return; // the loop looks again when the cycle ends
    // The first event of a burst starts the clock; the rest join the same batch.
    if (this.kickTimer && delayMs > 0) return;
    if (this.kickTimer) clearTimeout(this.kickTimer);
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      this.cycleDone = this.loop(force);
    }, delayMs);
  }

  private async loop(force: boolean): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      while (!this.stopped && !this.dirty.isEmpty() && (force || !this.isPaused())) {
        this.forcedCycle = force;
        force = false;
        const waiters = this.pendingWaiters;
        this.pendingWaiters = [];
        const snap = this.dirty.take();
        this.setState('syncing');
        const totals: CycleTotals = { filesSent: 0, deleted: 0, renamed: 0, bytesSent: 0, warnings: [] };
        let error: ErrorInfo | undefined;
        try {
          if (!this.checkLocalRoot())
            throw new LipsyncError(this.fatal!.kind, this.fatal!.message, { fix: this.fatal!.fix });
          await this.prepareRemote();
          await this.runCycle(snap, totals);
          this.lastSyncAt = Date.now();
          this.db?.setMeta('lastSyncAt', String(this.lastSyncAt));
          this.lastError = undefined;
          if (this.fatal && this.fatal.kind !== 'local-missing') this.fatal = undefined;
          this.retryDelayMs = 1000;
        } catch (e) {
          if (e instanceof PausedSignal) {
            // Paused mid-cycle: what was done is recorded; the rest is found again on resume.
            this.dirty.addFull();
            this.pendingWaiters.unshift(...waiters);
            break;
          }
          error = toErrorInfo(e);
          this.lastError = error;
          this.remoteReady = false;
          this.deps.log.write({
            pair: this.id,
            level: 'error',
            event: 'error',
            msg: `${error.message}${error.fix ? ` Fix: ${error.fix}` : ''}`,
          });
          if (isFatalKind(error.kind)) this.fatal = error;
          // Nothing was recorded for what failed: a full compare later finds it again.
          this.dirty.addFull();
          this.scheduleRetry();
        }
        this.progress = undefined;
        if (totals.warnings.length) this.warnings.push(...totals.warnings);
        if (this.warnings.length > 100) this.warnings.splice(0, this.warnings.length - 100);
        const result = this.result(totals, error);
        for (const w of waiters) w(result);
        if (error) break;
      }
    } finally {
      this.running = false;
      this.setState();
      // Events that arrived while we were busy.
      if (!this.stopped && !this.dirty.isEmpty() && !this.retryTimer && !this.isPaused()) this.kick();
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 60_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick(0);
    }, delay);
    this.retryTimer.unref();
  }

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

  private async runCycle(snap: ReturnType<DirtySet['take']>, totals: CycleTotals): Promise<void> {
    const batch = new Batch(this.batchContext(totals));
    if (snap.full) {
      await this.scanTree('', batch);
    } else {
      for (const t of snap.trees) await this.checkPath(t, batch, true);
      for (const [dir, names] of snap.dirs) {
        if (names === 'all') {
          if (!this.excluder.ignores(dir, true)) await this.scanDir(dir, batch);
        } else {
          for (const n of names) await this.checkPath(joinPath(dir, n), batch, false);
        }
      }
    }
    await batch.flush();
    // Directories moved remotely: look inside them for changes made around the move.
    while (batch.movedDirs.length) {
      const dir = batch.movedDirs.shift()!;
      await this.scanTree(dir, batch);
      await batch.flush();
    }
  }

  private batchContext(totals: CycleTotals): BatchContext {
    return {
      db: () => this.requireDb(),
      localRoot: this.settings.local,
      totals,
      ops: this.ops,
      push: async (paths, trashDir, filesTotal) => {
        this.progress = { filesDone: 0, filesTotal, bytesDone: 0, rateBps: 0 };
        const res = await rsyncPush({
          localRoot: this.settings.local,
          remote: this.remote,
          ssh: this.sshOptions(),
          paths,
          trashDir,
          bwLimitKBps: this.settings.bwLimitKBps || undefined,
          onProgress: (p) => {
            this.progress = { filesDone: p.filesDone, filesTotal, bytesDone: p.bytes, rateBps: p.rateBps };
            for (const l of this.progressListeners) l(this.progress);
          },
        });
        return res;
      },
      log: this.deps.log,
      pair: this.id,
      checkPaused: () => {
        if (this.stopped) throw new LipsyncError('cancelled', 'Stopped.');
        if (!this.forcedCycle && this.isPaused()) throw new PausedSignal();
      },
    };
  }

  private requireDb(): StateDb {
    if (!this.db) throw new LipsyncError('cancelled', 'The pair is stopping.');
    return this.db;
  }

  /** Walk `start` and everything below it, one directory at a time. */
  private async scanTree(start: string, batch: Batch): Promise<void> {
    const stack = [start];
    while (stack.length) {
      if (this.stopped) throw new LipsyncError('cancelled', 'Stopped.');
      const dir = stack.pop()!;
      const descend = await this.scanDir(dir, batch, false);
      for (const d of descend) stack.push(d);
    }
  }

  /** Compare one directory; returns the subdirectories to descend into (when not recursing itself). */
  private async scanDir(dir: string, batch: Batch, recurseNew = true): Promise<string[]> {
    const db = this.requireDb();
    const { changes, subdirs, skipped } = await compareDir(this.settings.local, db, dir, this.excluder);
    for (const s of skipped)
      batch.warn({ kind: 'permission-denied', message: `Skipped ${s.path}: ${s.reason}.`, files: [s.path] });
    const noDescend = new Set<string>();
    for (const c of changes) {
      const moved = await this.consider(c, batch);
      if (moved) noDescend.add(c.path);
    }
    const next = subdirs.filter((d) => !noDescend.has(d));
    if (recurseNew) {
      // A directory compare (collapsed events): descend only into directories that are new here.
      for (const c of changes) {
        if (c.type !== 'deleted' && c.stat.kind === 'dir' && !noDescend.has(c.path)) await this.scanTree(c.path, batch);
      }
      return [];
    }
    return next;
  }

  /** Check one path named by an event; `tree`: also everything below it. */
  private async checkPath(path: string, batch: Batch, tree: boolean): Promise<void> {
    const db = this.requireDb();
    const stat = await lstatLocal(join(this.settings.local, path));
    if (stat && this.excluder.ignores(path, stat.kind === 'dir')) return;
    if (!stat && this.excluder.ignores(path, false)) return;
    const entry = db.get(path);
    let change: ScanChange | null = null;
    if (!stat && entry) change = { type: 'deleted', path, entry };
    else if (stat && !entry) change = { type: 'added', path, stat };
    else if (stat && entry && !(await this.unchanged(path, stat, entry)))
      change = { type: 'modified', path, stat, entry };
    let moved = false;
    if (change) moved = await this.consider(change, batch);
    if (
      stat?.kind === 'dir' &&
      !moved &&
      (tree || change?.type === 'added' || (change && change.type === 'modified' && change.entry.kind !== 'dir'))
    ) {
      await this.scanTree(path, batch);
    }
  }

  private async unchanged(path: string, stat: LocalStat, entry: Entry): Promise<boolean> {
    if (!sameAsEntry(stat, entry)) return false;
    if (stat.kind === 'file' && isRacy(stat, entry.syncedAtNs)) {
      return entry.hash !== null && (await hashFile(join(this.settings.local, path))) === entry.hash;
    }
    return true;
  }

  /** Decide what one change means remotely. Returns true when it is a move (do not descend). */
  private async consider(c: ScanChange, batch: Batch): Promise<boolean> {
    if (c.type === 'deleted') {
      batch.addDelete(c.path, c.entry);
      return false;
    }
    if (c.type === 'added' || (c.type === 'modified' && c.entry.kind !== c.stat.kind)) {
      const from = await this.movedFrom(c.path, c.stat);
      if (from !== null) {
        batch.addMove(from, c.path, c.stat);
        return true;
      }
    }
    await batch.addUpload(c.path, c.stat);
    return false;
  }

  /**
   * Rename detection: a new path whose inode the database knows at another
   * path that no longer exists locally (or is another file now) was moved there.
   */
  private async movedFrom(path: string, stat: LocalStat): Promise<string | null> {
    const db = this.requireDb();
    for (const cand of db.byInode(stat.ino)) {
      if (cand.path === path || cand.kind !== stat.kind || isUnder(path, cand.path)) continue;
      if (this.excluder.ignores(cand.path, cand.kind === 'dir')) continue;
      const now = await lstatLocal(join(this.settings.local, cand.path));
      if (now && now.ino === cand.ino) continue; // still there: a hard link, not a move
      return cand.path;
    }
    return null;
  }
}

function pausedReason(s: PairSettings): ErrorInfo {
  return {
    kind: 'cancelled',
    message: s.pausedUntil ? `Paused until ${new Date(s.pausedUntil).toLocaleString()}.` : 'Paused until resumed.',
  };
}

function isFatalKind(kind: ErrorInfo['kind']): boolean {
  return ['remote-missing', 'remote-not-dir', 'rsync-missing-remote', 'host-key-changed', 'local-missing'].includes(
    kind,
  );
}

export function writeLocalMarker(root: string, id: string): void {
  mkdirSync(join(root, '.lipsync'), { recursive: true });
  writeFileSync(join(root, LOCAL_MARKER), id + '\n');
}

// -------------------------------------------------------------------- the batch

interface BatchContext {
  db: () => StateDb;
  localRoot: string;
  totals: CycleTotals;
  ops: RemoteOps;
  push: (paths: string[], trashDir: string, filesTotal: number) => ReturnType<typeof rsyncPush>;
  log: ActivityLog;
  pair: string;
  /** Throws when the cycle must stop before its next remote step (paused, stopping). */
  checkPaused: () => void;
}

class PausedSignal extends Error {}

/**
 * Collects what one cycle must do remotely, at most BATCH_CAP paths at a time:
 * moves first (one remote command), then one rsync run for uploads and
 * deletions (deletions via --delete-missing-args, replaced and deleted remote
 * versions into the trash via --backup-dir). The database follows each
 * remote step only once it succeeded.
 */
class Batch {
  private uploads = new Map<string, LocalStat>();
  private deletes = new Map<string, Entry>();
  private moves = new Map<string, { from: string; stat: LocalStat }>();
  private moveSources = new Set<string>();
  readonly movedDirs: string[] = [];

  constructor(private readonly ctx: BatchContext) {}

  private get size(): number {
    return this.uploads.size + this.deletes.size + this.moves.size;
  }

  warn(w: ErrorInfo): void {
    this.ctx.totals.warnings.push(w);
  }

  async addUpload(path: string, stat: LocalStat): Promise<void> {
    this.deletes.delete(path);
    this.uploads.set(path, stat);
    if (this.size >= BATCH_CAP) await this.flush();
  }

  addDelete(path: string, entry: Entry): void {
    if (this.moveSources.has(path) || this.uploads.has(path)) return;
    this.deletes.set(path, entry);
  }

  addMove(from: string, to: string, stat: LocalStat): void {
    this.deletes.delete(from);
    this.moveSources.add(from);
    this.moves.set(to, { from, stat });
  }

  async flush(): Promise<void> {
    if (this.size) this.ctx.checkPaused();
    await this.flushMoves();
    await this.flushTransfers();
  }

  private async flushMoves(): Promise<void> {
    if (!this.moves.size) return;
    const db = this.ctx.db();
    const list = [...this.moves].map(([to, m]) => ({ from: m.from, to, stat: m.stat }));
    this.moves.clear();
    this.moveSources.clear();
    // Parents before children so a moved directory's moved child finds its new parent.
    list.sort((a, b) => a.to.length - b.to.length);
    const results = await this.ctx.ops.rename(
      list.map(({ from, to }) => ({ from, to })),
      trashDirName(),
    );
    for (const r of results) {
      const item = list.find((m) => m.from === r.from && m.to === r.to)!;
      if (r.ok) {
        db.renameTree(r.from, r.to);
        this.ctx.totals.renamed++;
        this.ctx.log.write({
          pair: this.ctx.pair,
          level: 'info',
          event: 'rename',
          msg: `moved ${r.from} → ${r.to}`,
          from: r.from,
          to: r.to,
        });
        if (item.stat.kind === 'dir') this.movedDirs.push(r.to);
        else {
          const entry = db.get(r.to);
          if (!entry || !sameAsEntry(item.stat, entry)) this.uploads.set(r.to, item.stat);
        }
      } else {
        // Not there to move: send it instead (and its contents, for a directory).
        this.uploads.set(r.to, item.stat);
        if (item.stat.kind === 'dir') this.movedDirs.push(r.to);
        const entry = db.get(r.from);
        if (entry) this.deletes.set(r.from, entry);
      }
    }
  }

  private async flushTransfers(): Promise<void> {
    if (!this.uploads.size && !this.deletes.size) return;
    const uploads = this.uploads;
    const deletes = this.deletes;
    this.uploads = new Map();
    this.deletes = new Map();
    const paths = [...deletes.keys(), ...uploads.keys()];
    const res = await this.ctx.push(paths, trashDirName(), paths.length);
    this.ctx.totals.warnings.push(...res.warnings.map((w) => w.toInfo()));
    if (!res.ok) throw res.error ?? new LipsyncError('unknown', 'rsync failed.');
    const failed = new Set<string>();
    for (const w of res.warnings) for (const f of w.files ?? []) failed.add(f);
    const db = this.ctx.db();
    const records: Entry[] = [];
    const syncedAtNs = nowNs();
    for (const [path, stat] of uploads) {
      if (failed.has(path)) continue;
      let hash: string | null = null;
      if (stat.kind === 'file' && isRacy(stat, syncedAtNs)) {
        try {
          hash = await hashFile(join(this.ctx.localRoot, path));
        } catch {
          continue; // vanished meanwhile: the next event or scan handles it
        }
      }
      records.push({ ...stat, path, hash, syncedAtNs, remoteSize: stat.size, remoteMtimeNs: stat.mtimeNs });
    }
    db.transaction(() => {
      for (const path of deletes.keys()) if (!failed.has(path)) db.deleteTree(path);
      db.upsert(records);
    });
    const sentFiles = res.items.filter((i) => !i.deleted && i.itemize.startsWith('<f')).map((i) => i.path);
    const deleted = [...deletes.keys()].filter((p) => !failed.has(p));
    this.ctx.totals.filesSent += res.items.filter((i) => !i.deleted && i.itemize.startsWith('<f')).length;
    this.ctx.totals.deleted += deleted.length;
    this.ctx.totals.bytesSent += res.literalBytes;
    if (sentFiles.length) {
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'push',
        msg: `sent ${sentFiles.length} file${sentFiles.length === 1 ? '' : 's'} (${res.literalBytes} bytes of data)`,
        paths: sentFiles.slice(0, 1000),
        bytes: res.literalBytes,
      });
    }
    if (deleted.length) {
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'delete',
        msg: `deleted ${deleted.length} path${deleted.length === 1 ? '' : 's'} on the server (kept in its .lipsync/trash)`,
        paths: deleted.slice(0, 1000),
      });
    }
  }
}
