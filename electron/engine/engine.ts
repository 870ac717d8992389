import { rmSync } from 'node:fs';
import type { AddPairParams, SyncPairResult } from '../../shared/api.js';
import type { PairSettings } from '../../shared/settings.js';
import type { EngineStatus, LogRecord, TransferProgress } from '../../shared/status.js';
import { SettingsStore } from './config.js';
import { ActivityLog } from './log.js';
import { PairRunner } from './pair.js';
import { validateNewPair } from './pairs.js';
import { dataPaths, ensurePrivateDir, type AppDirs } from './paths.js';
import { LipsyncError } from './errors.js';
import { stopAllChildren } from './proc/run.js';
import type { SshOptions } from './types.js';

export const VERSION = '0.1.0';

export interface EngineOptions {
  dirs: AppDirs;
  /** Watch folders (daemon) or not (a one-shot `lipsync sync`). */
  watch: boolean;
  inotifywaitPath?: string;
  /** Called with every log record (the daemon prints them). */
  echo?: (r: LogRecord) => void;
  /** Called when a pair's state changes (the API pushes status). */
  onChange?: () => void;
}

/** All pairs of one user: settings, runners, and the operations the API exposes. */
export class Engine {
  readonly settings: SettingsStore;
  readonly log: ActivityLog;
  private readonly runners = new Map<string, PairRunner>();
  private readonly startedAt = Date.now();
  private resumeTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly opts: EngineOptions) {
    ensurePrivateDir(opts.dirs.dataDir);
    ensurePrivateDir(dataPaths(opts.dirs.dataDir).sshControlDir);
    this.settings = new SettingsStore(opts.dirs.configDir);
    this.log = new ActivityLog(dataPaths(opts.dirs.dataDir).log, opts.echo);
  }

  sshOptions(): SshOptions {
    const s = this.settings.read();
    return { controlDir: dataPaths(this.opts.dirs.dataDir).sshControlDir, configFile: s.sshConfigFile };
  }

  async start(only?: string): Promise<void> {
    for (const p of this.settings.pairs()) {
      if (only && p.id !== only) continue;
      await this.startPair(p);
    }
  }

  private async startPair(p: PairSettings): Promise<PairRunner> {
    const s = this.settings.read();
    const runner = new PairRunner(p, {
      stateDbFile: dataPaths(this.opts.dirs.dataDir).stateDb(p.id),
      ssh: this.sshOptions(),
      log: this.log,
      debounceMs: s.debounceMs,
      inotifywaitPath: this.opts.inotifywaitPath,
      watch: this.opts.watch,
      onChange: this.opts.onChange,
    });
    this.runners.set(p.id, runner);
    this.armResume(p);
    this.log.write({ pair: p.id, level: 'info', event: 'start', msg: `watching ${p.local} → ${p.remote}` });
    await runner.start();
    return runner;
  }

  async stop(): Promise<void> {
    for (const t of this.resumeTimers.values()) clearTimeout(t);
    this.resumeTimers.clear();
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
    await stopAllChildren();
  }

  status(): EngineStatus {
    const pairs = this.settings.pairs().map((p) => {
      const r = this.runners.get(p.id);
      if (r) return r.status();
      return {
        id: p.id,
        local: p.local,
        remote: p.remote,
        direction: p.direction,
        state: p.paused ? ('paused' as const) : ('idle' as const),
        pausedUntil: p.pausedUntil,
        watcher: 'none' as const,
        entries: 0,
        pending: 0,
        lastSyncAt: null,
        warnings: [],
      };
    });
    return { pid: process.pid, version: VERSION, startedAt: this.startedAt, pairs };
  }

  list(): PairSettings[] {
    return this.settings.pairs();
  }

  async add(params: AddPairParams): Promise<PairSettings> {
    const s = this.settings.read();
    const pair = await validateNewPair(params, s.pairs, this.sshOptions());
    this.settings.write({ ...s, pairs: [...s.pairs, pair] });
    this.log.write({ pair: pair.id, level: 'info', event: 'state', msg: `added ${pair.local} → ${pair.remote}` });
    if (this.opts.watch) await this.startPair(pair);
    return pair;
  }

  /** Forget a pair. Files are never deleted, on either side. */
  async remove(id: string): Promise<{ removed: string }> {
    const s = this.settings.read();
    if (!s.pairs.some((p) => p.id === id)) throw unknownPair(id);
    await this.runners.get(id)?.stop();
    this.runners.delete(id);
    this.settings.write({ ...s, pairs: s.pairs.filter((p) => p.id !== id) });
    const db = dataPaths(this.opts.dirs.dataDir).stateDb(id);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
    this.log.write({ pair: id, level: 'info', event: 'state', msg: 'removed (no files were deleted)' });
    return { removed: id };
  }

  private targets(pair?: string): PairSettings[] {
    const all = this.settings.pairs();
    if (!pair) return all;
    const p = all.find((x) => x.id === pair);
    if (!p) throw unknownPair(pair);
    return [p];
  }

  async pause(pair?: string, forMs?: number): Promise<{ paused: string[] }> {
    const paused: string[] = [];
    for (const p of this.targets(pair)) {
      const next = this.settings.updatePair(p.id, { paused: true, pausedUntil: forMs ? Date.now() + forMs : null });
      await this.runners.get(p.id)?.update(next);
      this.armResume(next);
      this.log.write({
        pair: p.id,
        level: 'info',
        event: 'state',
        msg: forMs ? `paused for ${Math.round(forMs / 60000)} min` : 'paused',
      });
      paused.push(p.id);
    }
    return { paused };
  }

  async resume(pair?: string): Promise<{ resumed: string[] }> {
    const resumed: string[] = [];
    for (const p of this.targets(pair)) {
      const next = this.settings.updatePair(p.id, { paused: false, pausedUntil: null });
      clearTimeout(this.resumeTimers.get(p.id));
      await this.runners.get(p.id)?.update(next);
      this.log.write({ pair: p.id, level: 'info', event: 'state', msg: 'resumed' });
      resumed.push(p.id);
    }
    return { resumed };
  }

  private armResume(p: PairSettings): void {
    clearTimeout(this.resumeTimers.get(p.id));
    if (!p.paused || p.pausedUntil === null) return;
    const t = setTimeout(() => void this.resume(p.id).catch(() => undefined), Math.max(0, p.pausedUntil - Date.now()));
    t.unref();
    this.resumeTimers.set(p.id, t);
  }

  /** Sync now and wait. Starts pairs that are not running (one-shot mode). */
  async sync(pair?: string, onProgress?: (pair: string, p: TransferProgress) => void): Promise<SyncPairResult[]> {
    const targets = this.targets(pair);
    const results: SyncPairResult[] = [];
    for (const p of targets) {
      const runner = this.runners.get(p.id) ?? (await this.startPair(p));
      const off = onProgress ? runner.onProgress((pr) => onProgress(p.id, pr)) : () => undefined;
      try {
        results.push(await runner.syncNow());
      } finally {
        off();
      }
    }
    return results;
  }

  logTail(lines = 50, pair?: string): LogRecord[] {
    return this.log.tail(lines, pair);
  }
}

function unknownPair(id: string): LipsyncError {
  return new LipsyncError('pair-unknown', `There is no folder pair "${id}".`, {
    fix: 'See `lipsync list` for the pairs.',
  });
}
