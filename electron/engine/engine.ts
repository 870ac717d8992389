/**
 * The Engine: every pair of this computer (one PairRunner each, pair.ts) and the
 * operations the local API (shared/api.ts, run by api/dispatch.ts) and the CLI expose:
 * status and its coalesced `state` events, add/remove/update a pair, pause, resume,
 * sync now, conflicts, versions and restore, the previews of excludes and of a first
 * sync, and the setup wizard's calls (setup.ts).
 *
 * Over ~400 lines on purpose: it is the API's one facade, one short method per API
 * method, each handing the work to the module that does it; the surface the UI can
 * call is read here in one place.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { StateDb, isDamagedDbError } from './state/db.js';
import { hostname } from 'node:os';
import {
  PREVIEW_EXCLUDES_LIMIT,
  RECENT_EVENTS,
  conflictId,
  parseConflictId,
  type AddPairParams,
  type ConflictInfo,
  type PairPatch,
  type PreviewExcludesResult,
  type PreviewInitialSyncResult,
  type SyncPairResult,
  type ApiResults,
  type VersionInfo,
} from '../../shared/api.js';
import type { PairSettings } from '../../shared/settings.js';
import type { EngineStatus, LogRecord, TransferProgress } from '../../shared/status.js';
import { SettingsStore } from './config.js';
import { ActivityLog } from './log.js';
import { PairRunner, readLastProblem, type LastProblem } from './pair.js';
import { checkLocalFolder, validateNewPair } from './pairs.js';
import { createExcluder, validateExcludePatterns } from './excludes.js';
import { browseRemote } from './setup/browse.js';
import { testConnection } from './setup/connection.js';
import type { SetupContext } from './setup/context.js';
import { trustHostKey } from './setup/hostkey.js';
import { installKey } from './setup/install-key.js';
import { generateKey, listKeys, readKey } from './setup/keys.js';
import type {
  BrowseRemoteInput,
  BrowseRemoteResult,
  GenerateKeyParams,
  CheckLocalFolderParams,
  CheckLocalFolderResult,
  InstallKeyParams,
  ReadKeyParams,
  SshKeyInfo,
  TestConnectionParams,
  TestConnectionResult,
  TrustHostKeyParams,
} from '../../shared/setup.js';
import { dataPaths, ensurePrivateDir, type AppDirs } from './paths.js';
import { LipsyncError } from './errors.js';
import { stopAllChildren } from './proc/run.js';
import type { SshOptions } from './types.js';
import { parseRemote } from './remote/spec.js';
import { listRemote } from './remote/list.js';
import { probeCapabilities } from './remote/probe.js';
import { lstatLocal } from './scan.js';
import { rsyncSameContent } from './remote/rsync.js';
import { listVersions, restoreVersion, type VersionSource } from './versions.js';
import { META_DIR } from '../../shared/layout.js';

export const VERSION = '0.1.0';

/** State snapshots are pushed at most this often. */
export const STATE_INTERVAL_MS = 100;

/** `previewExcludes` gives up walking after this long or this many entries (and says so). */
const PREVIEW_TIME_LIMIT_MS = 10_000;
const PREVIEW_ENTRY_LIMIT = 2_000_000;

/** `previewInitialSync` holds at most this many local paths, and gives up after this long (and says so). */
const PREVIEW_INITIAL_LOCAL_LIMIT = 500_000;
/** At most this many same-size files are compared by content (rsync checksums) in the preview. */
const PREVIEW_INITIAL_COMPARE_LIMIT = 50_000;
const PREVIEW_INITIAL_TIME_LIMIT_MS = 30_000;
const NS = 1_000_000_000n;

export interface EngineOptions {
  dirs: AppDirs;
  /** Watch folders (daemon) or not (a one-shot `lipsync sync`). */
  watch: boolean;
  inotifywaitPath?: string;
  /** Called with every log record (the daemon prints them). */
  echo?: (r: LogRecord) => void;
  /** Remote polling interval when a server has no inotifywait; overrides the `remotePollSec` setting (tests). */
  remotePollMs?: number;
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
  private readonly stateListeners = new Set<(s: EngineStatus) => void>();
  private stateTimer: NodeJS.Timeout | null = null;
  private lastStateAt = 0;
  private progressOffs = new Map<string, () => void>();

  constructor(private readonly opts: EngineOptions) {
    ensurePrivateDir(opts.dirs.dataDir);
    ensurePrivateDir(dataPaths(opts.dirs.dataDir).sshControlDir);
    this.settings = new SettingsStore(opts.dirs.configDir);
    this.log = new ActivityLog(dataPaths(opts.dirs.dataDir).log, opts.echo);
    // A log record means something happened (files sent, an error...): counts may have changed.
    this.log.onRecord(() => this.changed());
  }

  // ---------------------------------------------------------------- events

  /**
   * State snapshots, coalesced: after any change (a pair's state, progress, settings,
   * a log record) one snapshot goes out, at most one every STATE_INTERVAL_MS.
   * Only changes are pushed; call `status()` for the current state.
   */
  onState(cb: (s: EngineStatus) => void): () => void {
    this.stateListeners.add(cb);
    return () => this.stateListeners.delete(cb);
  }

  /** Every activity-log record as it is written. */
  onLog(cb: (r: LogRecord) => void): () => void {
    return this.log.onRecord(cb);
  }

  /** Something changed: schedule one coalesced snapshot. */
  private changed(): void {
    this.opts.onChange?.();
    if (!this.stateListeners.size || this.stateTimer) return;
    const wait = Math.max(0, this.lastStateAt + STATE_INTERVAL_MS - Date.now());
    this.stateTimer = setTimeout(() => {
      this.stateTimer = null;
      this.lastStateAt = Date.now();
      if (!this.stateListeners.size) return;
      let snapshot: EngineStatus;
      try {
        snapshot = this.status();
      } catch {
        return; // settings unreadable for a moment (being rewritten): the next change retries
      }
      for (const l of [...this.stateListeners]) {
        try {
          l(snapshot);
        } catch {
          // a listener's failure is its own
        }
      }
    }, wait);
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
      writeQuietMs: s.writeQuietMs,
      writeMaxDelayMs: s.writeMaxDelayMs,
      deviceName: deviceNameOf(s),
      remotePollMs: this.opts.remotePollMs ?? s.remotePollSec * 1000,
      trashDays: s.trashDays,
      inotifywaitPath: this.opts.inotifywaitPath,
      watch: this.opts.watch,
      onChange: () => this.changed(),
    });
    this.runners.set(p.id, runner);
    this.progressOffs.get(p.id)?.();
    this.progressOffs.set(
      p.id,
      runner.onProgress(() => this.changed()),
    );
    this.changed();
    this.armResume(p);
    this.log.write({ pair: p.id, level: 'info', event: 'start', msg: `watching ${p.local} → ${p.remote}` });
    await runner.start();
    return runner;
  }

  async stop(): Promise<void> {
    for (const t of this.resumeTimers.values()) clearTimeout(t);
    this.resumeTimers.clear();
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.stateTimer = null;
    this.stateListeners.clear();
    for (const off of this.progressOffs.values()) off();
    this.progressOffs.clear();
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
    await stopAllChildren();
  }

  status(): EngineStatus {
    const pairs = this.settings.pairs().map((p) => {
      const r = this.runners.get(p.id);
      if (r) return r.status();
      // Not running (no daemon): what the pair's database says.
      const saved = this.savedState(p.id);
      // The problem the pair's last run ended with (a one-shot sync stopped by the mass-delete guard, an error).
      const problem = saved.problem;
      return {
        id: p.id,
        local: p.local,
        remote: p.remote,
        direction: p.direction,
        state:
          p.paused || problem?.as === 'mass-delete'
            ? ('paused' as const)
            : problem
              ? ('error' as const)
              : ('idle' as const),
        ...(problem?.as === 'mass-delete' ? { reason: problem.info } : {}),
        ...(problem?.as === 'error' ? { lastError: problem.info } : {}),
        pausedUntil: p.pausedUntil,
        watcher: 'none' as const,
        remoteWatcher: 'none' as const,
        conflicts: saved.conflicts,
        entries: saved.entries,
        pending: 0,
        lastSyncAt: saved.lastSyncAt,
        warnings: [],
      };
    });
    return { pid: process.pid, version: VERSION, startedAt: this.startedAt, pairs };
  }

  private savedState(id: string): {
    entries: number;
    conflicts: number;
    lastSyncAt: number | null;
    problem?: LastProblem;
  } {
    const file = dataPaths(this.opts.dirs.dataDir).stateDb(id);
    if (!existsSync(file)) return { entries: 0, conflicts: 0, lastSyncAt: null };
    let db: StateDb;
    try {
      db = StateDb.open(file);
    } catch (e) {
      // Damaged: the pair moves it aside and rebuilds it when it starts (see PairRunner.start).
      if (isDamagedDbError(e)) return { entries: 0, conflicts: 0, lastSyncAt: null };
      throw e;
    }
    try {
      const last = db.getMeta('lastSyncAt');
      const problem = readLastProblem(db);
      return {
        entries: db.count(),
        conflicts: db.openConflicts().length,
        lastSyncAt: last ? Number(last) : null,
        ...(problem ? { problem } : {}),
      };
    } finally {
      db.close();
    }
  }

  list(): PairSettings[] {
    return this.settings.pairs();
  }

  async add(params: AddPairParams): Promise<PairSettings> {
    const s = this.settings.read();
    const pair = await validateNewPair(params, s.pairs, this.sshOptions());
    // The first sync's mode lives in the pair's database, read until its first sync completes (F1–F3).
    const dbFile = dataPaths(this.opts.dirs.dataDir).stateDb(pair.id);
    mkdirSync(dirname(dbFile), { recursive: true, mode: 0o700 });
    const db = StateDb.open(dbFile);
    try {
      db.setMeta('initialSync', params.initialSync ?? 'merge');
    } finally {
      db.close();
    }
    this.settings.write({ ...s, pairs: [...s.pairs, pair] });
    const mode = params.initialSync && params.initialSync !== 'merge' ? ` (first sync: ${params.initialSync})` : '';
    this.log.write({
      pair: pair.id,
      level: 'info',
      event: 'state',
      msg: `added ${pair.local} → ${pair.remote}${mode}`,
    });
    if (this.opts.watch) await this.startPair(pair);
    this.changed();
    return pair;
  }

  /** Forget a pair. Files are never deleted, on either side. */
  async remove(id: string): Promise<{ removed: string }> {
    const s = this.settings.read();
    if (!s.pairs.some((p) => p.id === id)) throw unknownPair(id);
    await this.runners.get(id)?.stop();
    this.runners.delete(id);
    this.progressOffs.get(id)?.();
    this.progressOffs.delete(id);
    this.settings.write({ ...s, pairs: s.pairs.filter((p) => p.id !== id) });
    const db = dataPaths(this.opts.dirs.dataDir).stateDb(id);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
    this.log.write({ pair: id, level: 'info', event: 'state', msg: 'removed (no files were deleted)' });
    this.changed();
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
    this.changed();
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
    this.changed();
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

  /** Open conflicts of every pair (or one). Pairs that are not running are opened for reading. */
  async conflicts(pair?: string): Promise<ConflictInfo[]> {
    const out: ConflictInfo[] = [];
    for (const p of this.targets(pair)) {
      const runner = this.runners.get(p.id) ?? (await this.startPair(p));
      for (const c of runner.openConflicts()) {
        out.push({
          id: conflictId(p.id, c.id),
          pair: p.id,
          seq: c.id,
          path: c.path,
          copyPath: c.copyPath,
          local: c.local,
          remote: c.remote,
          createdAt: c.createdAt,
        });
      }
    }
    return out;
  }

  /**
   * Settle conflict `id`: "docs-3" (unique across pairs), or a bare number as before, which
   * needs `pair` when several pairs have a conflict of that number.
   */
  async resolve(
    id: string | number,
    keep: 'local' | 'remote' | 'both',
    pair?: string,
  ): Promise<{ resolved: string; kept: typeof keep }> {
    const ref = parseConflictId(id);
    if (!ref)
      throw new LipsyncError('pair-unknown', `"${id}" is not a conflict ID.`, {
        fix: 'Conflict IDs look like docs-3: see `lipsync conflicts`.',
      });
    if (ref.pair && pair && ref.pair !== pair)
      throw new LipsyncError('pair-unknown', `Conflict ${id} belongs to pair ${ref.pair}, not ${pair}.`, {
        fix: 'Leave out --pair: the ID names its pair.',
      });
    const matches = (await this.conflicts(ref.pair ?? pair)).filter((c) => c.seq === ref.seq);
    if (!matches.length)
      throw new LipsyncError('pair-unknown', `There is no open conflict ${id}.`, { fix: 'See `lipsync conflicts`.' });
    if (matches.length > 1) {
      throw new LipsyncError(
        'pair-unknown',
        `Conflict ${id} exists in several pairs (${matches.map((m) => m.pair).join(', ')}).`,
        {
          fix: `Use the full ID: ${matches.map((m) => m.id).join(' or ')} (see \`lipsync conflicts\`).`,
        },
      );
    }
    const c = matches[0]!;
    const runner = this.runners.get(c.pair)!;
    await runner.resolve(c.seq, keep);
    // Make both sides agree now (the CLI waits for it).
    await runner.syncNow();
    return { resolved: c.id, kept: keep };
  }

  async confirm(pair: string): Promise<{ confirmed: string }> {
    const [p] = this.targets(pair);
    const runner = this.runners.get(p!.id) ?? (await this.startPair(p!));
    runner.confirm();
    this.log.write({ pair: p!.id, level: 'info', event: 'state', msg: 'mass deletion confirmed by the user' });
    if (!this.opts.watch) await runner.syncNow();
    return { confirmed: p!.id };
  }

  /** What versions/restore need of a pair: its roots, ssh options and the names shown as origins. */
  private versionSource(p: PairSettings): VersionSource {
    const remote = parseRemote(p.remote);
    const s = this.settings.read();
    const ssh = this.sshOptions();
    return {
      pair: p.id,
      localRoot: p.local,
      remote,
      ssh: { ...ssh, identityFile: p.identityFile ?? ssh.identityFile },
      deviceName: deviceNameOf(s),
      remoteLabel: remote.kind === 'ssh' ? remote.host : remote.path,
    };
  }

  /** Older and deleted versions from both sides' trash (every pair, or one), newest first. */
  async versions(params: { pair?: string; path?: string; query?: string; limit?: number }): Promise<VersionInfo[]> {
    const out: VersionInfo[] = [];
    for (const p of this.targets(params.pair)) {
      const o: { path?: string; query?: string; limit?: number } = {};
      if (params.path !== undefined) o.path = params.path.replace(/^\/+|\/+$/g, '');
      if (params.query !== undefined) o.query = params.query;
      if (params.limit !== undefined) o.limit = params.limit;
      out.push(...(await listVersions(this.versionSource(p), o)));
    }
    out.sort((a, b) => b.trashedAt - a.trashedAt);
    return out.slice(0, params.limit ?? 1000);
  }

  /** Restores a version into the local folder (what is there goes to the trash first), then syncs. */
  async restore(pair: string, id: string, to?: string): Promise<ApiResults['restore']> {
    const [p] = this.targets(pair);
    const r = await restoreVersion(this.versionSource(p!), id, to);
    this.log.write({
      pair: p!.id,
      level: 'info',
      event: 'state',
      msg: `restored ${r.path} from ${id.startsWith('remote:') ? "the server's" : "this computer's"} trash${r.replacedTo ? ` (the version it replaced is in ${r.replacedTo})` : ''}`,
      paths: [r.path],
    });
    const runner = this.runners.get(p!.id) ?? (await this.startPair(p!));
    await runner.syncNow();
    return { pair: p!.id, path: r.path, replacedTo: r.replacedTo };
  }

  logTail(lines = 50, pair?: string): LogRecord[] {
    return this.log.tail(lines, pair);
  }

  /**
   * Change a pair's settings. Everything is validated before anything is written; a
   * change of excludes makes the pair rescan, a change of direction restarts it.
   */
  async update(pair: string, patch: PairPatch): Promise<PairSettings> {
    const [p] = this.targets(pair);
    if (patch.excludes) {
      const err = validateExcludePatterns(patch.excludes);
      if (err) throw new LipsyncError('invalid-settings', `patch.excludes: ${err}`);
    }
    const clean: Partial<PairSettings> = {};
    if (patch.direction !== undefined) clean.direction = patch.direction;
    if (patch.excludes !== undefined) clean.excludes = patch.excludes;
    if (patch.bwLimitKBps !== undefined) clean.bwLimitKBps = patch.bwLimitKBps;
    if (patch.compression !== undefined) clean.compression = patch.compression;
    if (patch.rescanIntervalSec !== undefined) clean.rescanIntervalSec = patch.rescanIntervalSec;
    const next = this.settings.updatePair(p!.id, clean);
    const runner = this.runners.get(p!.id);
    if (runner) {
      if (next.direction !== p!.direction) {
        // The remote change feed is started (or not) by direction: start the pair afresh.
        await runner.stop();
        this.runners.delete(p!.id);
        await this.startPair(next);
      } else {
        await runner.update(next);
      }
    }
    const changes = Object.keys(clean);
    this.log.write({
      pair: p!.id,
      level: 'info',
      event: 'state',
      msg: changes.length ? `settings changed: ${changes.join(', ')}` : 'settings unchanged',
    });
    this.changed();
    return next;
  }

  /**
   * Which existing local files and folders `excludes` would leave out: a breadth-first
   * walk of the pair's local folder that stops after PREVIEW_EXCLUDES_LIMIT matches (an
   * excluded folder is listed once, not its contents). Symlinks are not followed.
   */
  async previewExcludes(pair: string, excludes: string[]): Promise<PreviewExcludesResult> {
    const [p] = this.targets(pair);
    const err = validateExcludePatterns(excludes);
    if (err) throw new LipsyncError('invalid-settings', `excludes: ${err}`);
    const excluder = createExcluder(excludes);
    const root = p!.local;
    const excluded: string[] = [];
    let truncated = false;
    let seen = 0;
    const deadline = Date.now() + PREVIEW_TIME_LIMIT_MS;
    const queue: string[] = [''];
    walk: for (let qi = 0; qi < queue.length; qi++) {
      const rel = queue[qi]!;
      queue[qi] = '';
      let dir;
      try {
        dir = await opendir(rel ? join(root, rel) : root);
      } catch {
        continue; // unreadable or gone meanwhile
      }
      for await (const d of dir) {
        if (d.name === META_DIR && d.isDirectory()) continue; // lipsync's own folder
        const path = rel ? `${rel}/${d.name}` : d.name;
        const isDir = d.isDirectory();
        if (excluder.ignores(path, isDir)) {
          if (excluded.length >= PREVIEW_EXCLUDES_LIMIT) {
            truncated = true;
            break walk;
          }
          excluded.push(path);
        } else if (isDir) queue.push(path);
        if (++seen >= PREVIEW_ENTRY_LIMIT || Date.now() > deadline) {
          truncated = true;
          break walk;
        }
      }
    }
    return { excluded, count: excluded.length, truncated };
  }

  /**
   * What the first sync of a new pair would find: a walk of the local folder (at most
   * PREVIEW_INITIAL_LOCAL_LIMIT paths held) compared, as the remote listing streams in,
   * by kind, size and mtime to the second (no content is read: equal size and mtime
   * count as the same). Directories are not counted. A remote folder that does not exist
   * yet is empty; so is a local one.
   */
  async previewInitialSync(p: {
    local: string;
    remote: string;
    identityFile?: string;
  }): Promise<PreviewInitialSyncResult> {
    const root = resolve(p.local);
    const remote = parseRemote(p.remote);
    const ssh: SshOptions = { ...this.sshOptions(), ...(p.identityFile ? { identityFile: p.identityFile } : {}) };
    const excluder = createExcluder([]);
    const deadline = Date.now() + PREVIEW_INITIAL_TIME_LIMIT_MS;
    const res: PreviewInitialSyncResult = { localOnly: 0, remoteOnly: 0, different: 0, same: 0, truncated: false };
    type Seen = { kind: string; size: number; sec: bigint; target: string | null };
    const local = new Map<string, Seen>();
    const stack: string[] = [''];
    walk: while (stack.length) {
      const rel = stack.pop()!;
      let dir;
      try {
        dir = await opendir(rel ? join(root, rel) : root);
      } catch {
        continue; // missing (a new folder), unreadable, or gone meanwhile
      }
      for await (const d of dir) {
        const path = rel ? `${rel}/${d.name}` : d.name;
        if (excluder.ignores(path, d.isDirectory())) continue;
        if (local.size >= PREVIEW_INITIAL_LOCAL_LIMIT || Date.now() > deadline) {
          res.truncated = true;
          break walk;
        }
        const st = await lstatLocal(join(root, path));
        if (!st) continue;
        local.set(path, { kind: st.kind, size: st.size, sec: st.mtimeNs / NS, target: st.target });
        if (st.kind === 'dir') stack.push(path);
      }
    }
    // Equal size, other mtime: the first sync compares their content and makes no conflict
    // copy of identical files, so the preview compares them too (rsync checksums, no transfer).
    const sameSize: string[] = [];
    try {
      const caps = await probeCapabilities(remote, ssh);
      for await (const r of listRemote(remote, ssh, remote.path, '', caps, { recursive: true, excluder })) {
        const l = local.get(r.path);
        if (l) local.delete(r.path);
        if (r.kind === 'dir') {
          if (l && l.kind !== 'dir') res.different++;
        } else if (!l) res.remoteOnly++;
        else if (l.kind !== r.kind) res.different++;
        else if (r.kind === 'symlink' ? l.target === r.target : l.size === r.size && l.sec === r.mtimeNs / NS)
          res.same++;
        else if (r.kind === 'file' && l.size === r.size && sameSize.length < PREVIEW_INITIAL_COMPARE_LIMIT)
          sameSize.push(r.path);
        else res.different++;
        if (Date.now() > deadline) {
          res.truncated = true;
          break;
        }
      }
    } catch (e) {
      // A remote folder that does not exist yet (the wizard creates it) holds nothing.
      if (!(e instanceof LipsyncError && e.kind === 'remote-missing')) throw e;
    }
    if (sameSize.length) {
      const same = await rsyncSameContent({ localRoot: root, remote, ssh, paths: sameSize });
      for (const path of sameSize) {
        if (same.get(path)) res.same++;
        else res.different++;
      }
    }
    for (const l of local.values()) if (l.kind !== 'dir') res.localOnly++;
    return res;
  }

  // ---------------------------------------------------------------- setup wizard (electron/engine/setup/)

  /** What the setup functions need: the ssh config file of the settings, the control socket dir. */
  setupContext(): SetupContext {
    return { sshConfigFile: this.settings.read().sshConfigFile, controlDir: this.sshOptions().controlDir };
  }

  testConnection(p: TestConnectionParams): Promise<TestConnectionResult> {
    return testConnection(p, this.setupContext());
  }

  trustHostKey(p: TrustHostKeyParams): Promise<{ trusted: true }> {
    return trustHostKey(p, this.setupContext());
  }

  listKeys(): Promise<SshKeyInfo[]> {
    return listKeys({}, this.setupContext());
  }

  generateKey(p: GenerateKeyParams): Promise<SshKeyInfo> {
    return generateKey(p, this.setupContext());
  }

  installKey(p: InstallKeyParams): Promise<{ installed: true }> {
    return installKey(p, this.setupContext());
  }

  browseRemote(p: BrowseRemoteInput): Promise<BrowseRemoteResult> {
    return browseRemote(p, this.setupContext());
  }

  readKey(p: ReadKeyParams): Promise<SshKeyInfo> {
    return readKey(p, this.setupContext());
  }

  /** The wizard's Folders step: the local folder exists, is writable, overlaps no pair. */
  checkLocalFolder(p: CheckLocalFolderParams): Promise<CheckLocalFolderResult> {
    return checkLocalFolder(p.path, this.settings.pairs());
  }

  /** Recent changes to files (push, pull, delete, rename, conflict), newest last. */
  recent(pair?: string, limit = 50): LogRecord[] {
    if (pair) this.targets(pair);
    const kinds: readonly string[] = RECENT_EVENTS;
    return this.log
      .tail(Number.MAX_SAFE_INTEGER, pair)
      .filter((r) => kinds.includes(r.event))
      .slice(-limit);
  }
}

function unknownPair(id: string): LipsyncError {
  return new LipsyncError('pair-unknown', `There is no folder pair "${id}".`, {
    fix: 'See `lipsync list` for the pairs.',
  });
}

/** This computer's name in conflict copies, locks and versions: the setting, else the host name. */
function deviceNameOf(s: { deviceName?: string | undefined }): string {
  return s.deviceName ?? (hostname().split('.')[0] || 'computer');
}
