/**
 * The restart records (pair/clean-stop.ts; docs/sync-semantics.md, "Restart after a
 * clean stop" and "Restart after a crash"): when each is written, which one a start
 * takes, and that a start always clears both.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDb } from '../../electron/engine/state/db.js';
import {
  checkpointMarkerId,
  recordCheckpoint,
  recordCleanStop,
  remoteMarkerId,
  takeCleanStop,
  type StopFacts,
} from '../../electron/engine/pair/clean-stop.js';
import { PairSettingsSchema, type PairSettings } from '../../shared/settings.js';

let dir: string;
let db: StateDb;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lipsync-clean-stop-'));
  db = StateDb.open(join(dir, 'p.db'));
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function settings(extra: Partial<PairSettings> = {}): PairSettings {
  return PairSettingsSchema.parse({ id: 'p', local: '/tmp/l', remote: 'host:/srv', ...extra });
}

/** Facts of a run in which everything seen is in the base; the server side not reachable. */
function facts(extra: Partial<StopFacts> = {}): StopFacts {
  const now = Date.now();
  return {
    watch: true,
    cleanRun: true,
    cycleCutShort: false,
    startedAt: now - 10_000,
    lastSyncAt: now - 1000,
    nothingPending: true,
    holding: false,
    problem: false,
    settings: settings(),
    remote: {
      spec: { kind: 'ssh', host: 'host', path: '/srv' },
      ssh: {},
      ready: false,
      caps: null,
      feed: null,
      position: null,
    },
    ...extra,
  } as StopFacts;
}

/** A reachable server watched in poll mode; `position` as a journal follower would give it. */
function pollRemote(position: string | null): StopFacts['remote'] {
  return {
    spec: { kind: 'ssh', host: 'host', path: '/srv' },
    ssh: {},
    ready: true,
    caps: { gnuFind: true },
    feed: { mode: 'poll', connected: true },
    position,
  } as unknown as StopFacts['remote'];
}

describe('restart records', () => {
  it('a checkpoint is written only when everything seen is in the base', async () => {
    const unclean: Partial<StopFacts>[] = [
      { cleanRun: false },
      { nothingPending: false },
      { holding: true },
      { problem: true },
      { watch: false },
      { lastSyncAt: null },
      { lastSyncAt: Date.now() - 60_000 }, // no sync in this run yet
    ];
    for (const u of unclean) {
      expect(await recordCheckpoint(db, facts(u)), JSON.stringify(u)).toBe(false);
      expect(takeCleanStop(db, settings()), JSON.stringify(u)).toBeNull();
    }
    const before = Date.now();
    expect(await recordCheckpoint(db, facts())).toBe(true);
    const taken = takeCleanStop(db, settings());
    expect(taken?.kind).toBe('checkpoint');
    expect(taken!.localSinceMs).toBeGreaterThanOrEqual(before - 5000);
    expect(taken!.localSinceMs).toBeLessThanOrEqual(Date.now() - 5000);
    // The server could not be marked: it is compared whole.
    expect(taken!.remoteMarker).toBeNull();
  });

  it('a send-only pair needs no server horizon; the checkpoint names its own marker', async () => {
    const s = settings({ direction: 'send-only' });
    expect(await recordCheckpoint(db, facts({ settings: s }))).toBe(true);
    const taken = takeCleanStop(db, s);
    expect(taken).toMatchObject({ kind: 'checkpoint', remoteMarker: checkpointMarkerId(db) });
    expect(checkpointMarkerId(db)).toBe(`${remoteMarkerId(db)}-ckpt`);
  });

  it('a start takes the clean stop over the checkpoint, and clears both', async () => {
    const s = settings({ direction: 'send-only' });
    expect(await recordCheckpoint(db, facts({ settings: s }))).toBe(true);
    await recordCleanStop(db, facts({ settings: s }));
    const taken = takeCleanStop(db, s);
    expect(taken).toMatchObject({ kind: 'stop', remoteMarker: remoteMarkerId(db) });
    // Cleared: the next start (after a crash with no new checkpoint) compares everything.
    expect(takeCleanStop(db, s)).toBeNull();
  });

  it('an end that was not clean falls back to the checkpoint; settings changed since fall back to everything', async () => {
    const s = settings({ direction: 'send-only' });
    expect(await recordCheckpoint(db, facts({ settings: s }))).toBe(true);
    await recordCleanStop(db, facts({ settings: s, cycleCutShort: true })); // not clean: nothing written
    expect(takeCleanStop(db, s)?.kind).toBe('checkpoint');

    expect(await recordCheckpoint(db, facts({ settings: s }))).toBe(true);
    expect(takeCleanStop(db, settings({ direction: 'send-only', excludes: ['*.tmp'] }))).toBeNull();
    expect(takeCleanStop(db, s)).toBeNull();
  });

  it('in poll mode a checkpoint has no server horizon (a stop keeps the poll marker)', async () => {
    const poll = pollRemote(null);
    expect(await recordCheckpoint(db, facts({ remote: poll }))).toBe(true);
    expect(takeCleanStop(db, settings())?.remoteMarker).toBeNull();
    await recordCleanStop(db, facts({ remote: poll }));
    expect(takeCleanStop(db, settings())?.remoteMarker).toBe(remoteMarkerId(db));
  });

  it('records the journal position only with a server horizon in inotify mode; a start takes only a well-formed one (J8)', async () => {
    const poll = pollRemote('1765000000:4096');
    await recordCleanStop(db, facts({ remote: poll }));
    expect(takeCleanStop(db, settings())).toMatchObject({ remoteMarker: remoteMarkerId(db), remotePos: null });
    // The server could not be marked: no horizon, so no position either.
    await recordCleanStop(db, facts({ remote: { ...poll, ready: false, feed: { mode: 'inotify', connected: true } } }));
    expect(takeCleanStop(db, settings())).toMatchObject({ remoteMarker: null, remotePos: null });

    const s = settings();
    const record = (remotePos: unknown) =>
      JSON.stringify({
        v: 1,
        kind: 'stop',
        localSinceMs: Date.now() - 5000,
        remote: true,
        remotePos,
        settings: JSON.stringify([s.local, s.remote, s.direction, s.excludes]),
      });
    db.setMeta('cleanStop', record('1765000000:4096'));
    expect(takeCleanStop(db, s)).toMatchObject({ remoteMarker: remoteMarkerId(db), remotePos: '1765000000:4096' });
    for (const bad of ['1765000000:4096; touch /tmp/x', '-', 42, null]) {
      db.setMeta('cleanStop', record(bad));
      expect(takeCleanStop(db, s), String(bad)).toMatchObject({ remoteMarker: remoteMarkerId(db), remotePos: null });
    }
  });
});
