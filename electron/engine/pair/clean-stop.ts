/**
 * The restart records (docs/sync-semantics.md, "Restart after a clean stop" and
 * "Restart after a crash"). Either lets the next start look only at what changed
 * since, not at both whole sides:
 * - the clean-stop record, written at a stop when everything seen in the run is in
 *   the database (a sync finished, nothing pending, no error or warning, both
 *   watchers healthy throughout);
 * - the checkpoint, written under the same conditions while the pair runs, when it
 *   is quiet after a sync (PairRunner, at most once per checkpoint interval), so that
 *   a kill -9, a power loss or a panic does not cost a compare of everything.
 * Each gives a local ctime horizon and a server change marker dated back (by the
 * server's clock). The checkpoint has its own marker (`<id>-ckpt`), which nothing
 * else moves: the poll feed moves the pair's marker as it goes, past changes not yet
 * synced. Both records are cleared at every start, so an end that was not clean
 * falls back to the last checkpoint of that run, or to comparing everything.
 */
import { randomBytes } from 'node:crypto';
import type { PairSettings } from '../../../shared/settings.js';
import type { RemoteCapabilities, RemoteSpec, SshOptions } from '../types.js';
import type { StateDb } from '../state/db.js';
import { setChangeMarker } from '../remote/watch.js';

/** Meta key of the clean-stop record. */
const CLEAN_STOP_META = 'cleanStop';
/** Meta key of the last checkpoint of the run. */
const CHECKPOINT_META = 'checkpoint';
/** Meta key of the pair's change marker id on the server. */
const REMOTE_MARKER_META = 'remoteMarkerId';
/** The clean-stop horizons are dated this far back: events still in flight at the stop are looked at again. */
const CLEAN_STOP_MARGIN_MS = 5000;

export interface CleanStop {
  v: 1;
  /** A clean stop, or the last checkpoint of a run that did not end with one (absent: a stop). */
  kind?: 'stop' | 'checkpoint';
  /** Local paths with a ctime after this (ms) are looked at on the next start. */
  localSinceMs: number;
  /** The server's marker was set at the stop (else the server is compared whole). */
  remote: boolean;
  /** The marker whose mtime is the server's horizon (absent: the pair's own, remoteMarkerId). */
  remoteMarker?: string;
  /** The shared watcher's journal position read at the stop (`gen:offset`), where the next start resumes (J8). */
  remotePos?: string;
  /** cleanStopSettings() at the stop. */
  settings: string;
}

/** What a start is given: the record, with the marker to list the server since. */
export interface RestartHorizon {
  kind: 'stop' | 'checkpoint';
  localSinceMs: number;
  /** The server's marker to list since; null: compare the server whole. */
  remoteMarker: string | null;
  /** Where to resume in the server's journal instead of listing (J8); null: list since the marker. */
  remotePos: string | null;
}

/** What must not have changed between a clean stop and the next start for the stop to count. */
function cleanStopSettings(s: PairSettings): string {
  return JSON.stringify([s.local, s.remote, s.direction, s.excludes]);
}

/**
 * The record of the last clean stop, else the run's last checkpoint, if the settings
 * that matter are unchanged; both always cleared, so an end from now on that is not
 * clean is never taken for this one.
 */
export function takeCleanStop(db: StateDb, settings: PairSettings): RestartHorizon | null {
  const stop = db.getMeta(CLEAN_STOP_META);
  const checkpoint = db.getMeta(CHECKPOINT_META);
  if (stop) db.setMeta(CLEAN_STOP_META, '');
  if (checkpoint) db.setMeta(CHECKPOINT_META, '');
  const raw = stop || checkpoint;
  if (!raw) return null;
  try {
    const record = JSON.parse(raw) as CleanStop;
    if (record.v !== 1 || typeof record.localSinceMs !== 'number' || record.settings !== cleanStopSettings(settings))
      return null;
    const kind = stop ? 'stop' : 'checkpoint';
    const remoteMarker = !record.remote ? null : (record.remoteMarker ?? remoteMarkerId(db));
    const remotePos =
      remoteMarker !== null && typeof record.remotePos === 'string' && /^\d+:\d+$/.test(record.remotePos)
        ? record.remotePos
        : null;
    return { kind, localSinceMs: record.localSinceMs, remoteMarker, remotePos };
  } catch {
    return null;
  }
}

/** This pair's stable change marker on the server (.lipsync/poll-marker-ID), kept in the database. */
export function remoteMarkerId(db: StateDb): string {
  let id = db.getMeta(REMOTE_MARKER_META);
  if (!id) {
    id = `p${randomBytes(8).toString('hex')}`;
    db.setMeta(REMOTE_MARKER_META, id);
  }
  return id;
}

/** What the pair knows at its stop, to tell whether the stop is clean. */
export interface StopFacts {
  /** The pair ran with watchers (a one-shot command leaves no record). */
  watch: boolean;
  /** Nothing in this run may have been missed (watchers healthy, no warning, no rebuilt database). */
  cleanRun: boolean;
  /** A cycle was cut short by the stop. */
  cycleCutShort: boolean;
  startedAt: number;
  lastSyncAt: number | null;
  /** Both dirty sets are empty. */
  nothingPending: boolean;
  /** A file is held because it is still being written (it is not in the base). */
  holding: boolean;
  /** An error, a fatal problem, a mass-delete pause, a degraded watcher, or a pause. */
  problem: boolean;
  settings: PairSettings;
  /** The server side, to date its marker back. */
  remote: {
    spec: RemoteSpec;
    ssh: SshOptions;
    ready: boolean;
    caps: RemoteCapabilities | null;
    feed: { mode: 'inotify' | 'poll'; connected: boolean } | null;
    /** The shared watcher's journal position read so far (with every record before it in the dirty sets), else null. */
    position: string | null;
  };
}

/** Whether everything seen in the run is in the database (see the top of this file). */
function allSeenInBase(f: StopFacts): boolean {
  if (!f.watch || !f.cleanRun || f.cycleCutShort || f.holding) return false;
  if (f.lastSyncAt === null || f.lastSyncAt < f.startedAt) return false;
  return f.nothingPending && !f.problem;
}

/**
 * Dates `markerId` back on the server; whether the server side has a horizon. In poll
 * mode a stop keeps the poll marker where the last processed poll left it; a checkpoint
 * has none (a change made since the last poll may be older than any mark it could set).
 */
async function serverHorizon(f: StopFacts, markerId: string, at: 'stop' | 'checkpoint'): Promise<boolean> {
  const r = f.remote;
  if (f.settings.direction === 'send-only') return true; // the server's changes are never read
  if (!r.ready || !r.caps?.gnuFind || !r.feed?.connected) return false;
  if (r.feed.mode === 'poll') return at === 'stop';
  return setChangeMarker(r.spec, r.ssh, r.spec.path, markerId, CLEAN_STOP_MARGIN_MS / 1000).then(
    () => true,
    () => false,
  );
}

/**
 * The journal position to record with a server horizon: the one read when `f` was taken, when
 * everything read before it was in the database then (J8). Not in poll mode, nor send-only.
 */
function journalPos(f: StopFacts, remote: boolean): { remotePos?: string } {
  const p = f.remote.position;
  return remote && p !== null && f.remote.feed?.mode === 'inotify' && f.settings.direction !== 'send-only'
    ? { remotePos: p }
    : {};
}

/** Writes the clean-stop record when the stop is clean (see the top of this file); else nothing. */
export async function recordCleanStop(db: StateDb, f: StopFacts): Promise<void> {
  if (!allSeenInBase(f)) return;
  const localSinceMs = Date.now() - CLEAN_STOP_MARGIN_MS;
  const remote = await serverHorizon(f, remoteMarkerId(db), 'stop');
  const record: CleanStop = {
    v: 1,
    kind: 'stop',
    localSinceMs,
    remote,
    ...journalPos(f, remote),
    settings: cleanStopSettings(f.settings),
  };
  db.setMeta(CLEAN_STOP_META, JSON.stringify(record));
}

/** The checkpoint's own marker on the server: only checkpoints set it. */
export function checkpointMarkerId(db: StateDb): string {
  return `${remoteMarkerId(db)}-ckpt`;
}

/**
 * Writes a checkpoint when everything seen so far is in the database; whether it did.
 * The horizons are taken before the server's marker is set: what changes meanwhile is
 * after them, and so is looked at after a crash.
 */
export async function recordCheckpoint(db: StateDb, f: StopFacts): Promise<boolean> {
  if (!allSeenInBase(f)) return false;
  const localSinceMs = Date.now() - CLEAN_STOP_MARGIN_MS;
  const remoteMarker = checkpointMarkerId(db);
  const remote = await serverHorizon(f, remoteMarker, 'checkpoint');
  const record: CleanStop = {
    v: 1,
    kind: 'checkpoint',
    localSinceMs,
    remote,
    remoteMarker,
    ...journalPos(f, remote),
    settings: cleanStopSettings(f.settings),
  };
  db.setMeta(CHECKPOINT_META, JSON.stringify(record));
  return true;
}
