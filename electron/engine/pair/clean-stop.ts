/**
 * The clean-stop record (docs/sync-semantics.md, "Restart after a clean stop").
 * At stop, when everything seen in the run is in the database (a sync finished,
 * nothing pending, no error or warning, both watchers healthy throughout), the
 * pair writes this record: the next start then looks only at what changed since
 * the stop, not at both whole sides. The local side gets a ctime horizon; the
 * server side its change marker dated back (by the server's clock). The record is
 * cleared at every start, so a crash is never taken for a clean stop.
 */
import { randomBytes } from 'node:crypto';
import type { PairSettings } from '../../../shared/settings.js';
import type { RemoteCapabilities, RemoteSpec, SshOptions } from '../types.js';
import type { StateDb } from '../state/db.js';
import { setChangeMarker } from '../remote/watch.js';

/** Meta key of the clean-stop record. */
const CLEAN_STOP_META = 'cleanStop';
/** Meta key of the pair's change marker id on the server. */
const REMOTE_MARKER_META = 'remoteMarkerId';
/** The clean-stop horizons are dated this far back: events still in flight at the stop are looked at again. */
const CLEAN_STOP_MARGIN_MS = 5000;

export interface CleanStop {
  v: 1;
  /** Local paths with a ctime after this (ms) are looked at on the next start. */
  localSinceMs: number;
  /** The server's marker was set at the stop (else the server is compared whole). */
  remote: boolean;
  /** cleanStopSettings() at the stop. */
  settings: string;
}

/** What must not have changed between a clean stop and the next start for the stop to count. */
function cleanStopSettings(s: PairSettings): string {
  return JSON.stringify([s.local, s.remote, s.direction, s.excludes]);
}

/**
 * The record of the last clean stop, if the settings that matter are unchanged;
 * always cleared, so a crash from now on is never taken for a clean stop.
 */
export function takeCleanStop(db: StateDb, settings: PairSettings): CleanStop | null {
  const raw = db.getMeta(CLEAN_STOP_META);
  if (!raw) return null;
  db.setMeta(CLEAN_STOP_META, '');
  try {
    const record = JSON.parse(raw) as CleanStop;
    if (record.v !== 1 || typeof record.localSinceMs !== 'number' || record.settings !== cleanStopSettings(settings))
      return null;
    return record;
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
  };
}

/** Writes the clean-stop record when the stop is clean (see the top of this file); else nothing. */
export async function recordCleanStop(db: StateDb, f: StopFacts): Promise<void> {
  if (!f.watch || !f.cleanRun || f.cycleCutShort) return;
  if (f.lastSyncAt === null || f.lastSyncAt < f.startedAt) return;
  if (!f.nothingPending || f.problem) return;
  const localSinceMs = Date.now() - CLEAN_STOP_MARGIN_MS;
  let remote = false;
  const r = f.remote;
  if (f.settings.direction === 'send-only')
    remote = true; // the server's changes are never read
  else if (r.ready && r.caps?.gnuFind && r.feed?.connected) {
    if (r.feed.mode === 'poll')
      remote = true; // the poll marker is where the last poll left it
    else {
      remote = await setChangeMarker(r.spec, r.ssh, r.spec.path, remoteMarkerId(db), CLEAN_STOP_MARGIN_MS / 1000).then(
        () => true,
        () => false,
      );
    }
  }
  const record: CleanStop = { v: 1, localSinceMs, remote, settings: cleanStopSettings(f.settings) };
  db.setMeta(CLEAN_STOP_META, JSON.stringify(record));
}
