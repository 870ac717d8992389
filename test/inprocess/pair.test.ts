/**
 * A pair in the test process: a PairRunner with its watchers, against a local-path
 * remote (a second folder), with a real state database in a temp dir. No build, no
 * sshd.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PairRunner, type PairDeps } from '../../electron/engine/pair.js';
import { ActivityLog } from '../../electron/engine/log.js';
import { StateDb } from '../../electron/engine/state/db.js';
import { PairSettingsSchema, type PairSettings } from '../../shared/settings.js';
import { put, read, tree } from '../support/trees.js';

let dir: string;
let local: string;
let server: string;
let runners: PairRunner[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lipsync-inprocess-pair-'));
  local = join(dir, 'local');
  server = join(dir, 'server');
  mkdirSync(local);
  mkdirSync(server);
  runners = [];
});

afterEach(async () => {
  for (const r of runners) await r.stop();
  rmSync(dir, { recursive: true, force: true });
});

function settings(extra: Partial<PairSettings> = {}): PairSettings {
  return PairSettingsSchema.parse({ id: 'p1', local, remote: server, ...extra });
}

function runner(s = settings(), deps: Partial<PairDeps> = {}): PairRunner {
  const r = new PairRunner(s, {
    stateDbFile: join(dir, 'data', 'p1.db'),
    ssh: { controlDir: join(dir, 'ssh') },
    log: new ActivityLog(join(dir, 'activity.log')),
    debounceMs: 20,
    deviceName: 'testbox',
    watch: true,
    trashDays: 30,
    remotePollMs: 300,
    ...deps,
  });
  runners.push(r);
  return r;
}

/** Waits until `ok()` holds (polling), or fails with `what`. */
async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const has = (root: string, rel: string, content: string) => existsSync(join(root, rel)) && read(root, rel) === content;

describe('a pair against a local-path remote (in-process)', () => {
  it('start syncs what is there, the watchers carry changes each way, stop leaves it idle', async () => {
    await put(local, 'before-here.txt', 'here before the start');
    await put(server, 'before-there.txt', 'on the server before the start');
    const pair = runner();
    await pair.start();
    await until('the first sync', () => has(server, 'before-here.txt', 'here before the start'));
    await until('the first sync, back', () => has(local, 'before-there.txt', 'on the server before the start'));
    await until('idle', () => pair.status().state === 'idle' && pair.status().lastSyncAt !== null);
    expect(pair.status().watcher).not.toBe('none');

    // A new file here: the local watcher picks it up, no "sync now".
    await put(local, 'docs/new.txt', 'written after the start');
    await until('the watcher’s change on the server', () => has(server, 'docs/new.txt', 'written after the start'));

    // An edit on the server: its change feed picks it up.
    await put(server, 'before-there.txt', 'edited on the server after the start');
    await until('the server’s change here', () =>
      has(local, 'before-there.txt', 'edited on the server after the start'),
    );

    // A deletion here.
    unlinkSync(join(local, 'docs/new.txt'));
    await until('the deletion on the server', () => !existsSync(join(server, 'docs/new.txt')));

    await until('idle again', () => pair.status().state === 'idle' && pair.status().pending === 0);
    await pair.stop();
    runners = [];
    expect(tree(local)).toEqual(tree(server));

    // The stop was clean: its record is in the database (pair/clean-stop.ts) ...
    const db = StateDb.open(join(dir, 'data', 'p1.db'));
    const record = JSON.parse(db.getMeta('cleanStop') ?? 'null') as { v: number; localSinceMs: number } | null;
    db.close();
    expect(record?.v).toBe(1);
    // ... and the next start finds what changed while stopped.
    await put(local, 'while-stopped.txt', 'written while stopped');
    const again = runner();
    await again.start();
    await until('the change made while stopped', () => has(server, 'while-stopped.txt', 'written while stopped'));
  });

  it('quiet after a sync it takes a checkpoint; a start with no clean-stop record looks since it', async () => {
    await put(local, 'a.txt', 'before');
    const pair = runner();
    await pair.start();
    await until('the first sync', () => has(server, 'a.txt', 'before'));
    const meta = (key: string) => {
      const db = StateDb.open(join(dir, 'data', 'p1.db'));
      try {
        return db.getMeta(key) || null;
      } finally {
        db.close();
      }
    };
    await until('a checkpoint', () => meta('checkpoint') !== null);
    expect(JSON.parse(meta('checkpoint')!)).toMatchObject({ v: 1, kind: 'checkpoint' });
    await pair.stop();
    runners = [];
    // As after a kill: no clean-stop record, only the run's checkpoint.
    const db = StateDb.open(join(dir, 'data', 'p1.db'));
    db.setMeta('cleanStop', '');
    db.close();
    await put(local, 'after.txt', 'written after the checkpoint');
    await put(server, 'a.txt', 'edited on the server after the checkpoint');
    const log = new ActivityLog(join(dir, 'activity2.log'));
    const again = runner(settings(), { log });
    await again.start();
    await until('the local change', () => has(server, 'after.txt', 'written after the checkpoint'));
    await until('the server change', () => has(local, 'a.txt', 'edited on the server after the checkpoint'));
    await until('idle', () => again.status().state === 'idle' && again.status().pending === 0);
    const msgs = log.tail(200).map((r) => String(r.msg));
    expect(msgs.filter((m) => /since the last checkpoint/.test(m))).toHaveLength(1);
  });

  it('sync now, a conflict resolved keeping the local version (the other in the trash)', async () => {
    await put(local, 'report.txt', 'v1');
    const pair = runner();
    await pair.start();
    const first = await pair.syncNow();
    expect(first.ok).toBe(true);
    expect(read(server, 'report.txt')).toBe('v1');

    // Both sides edited between two syncs (paused, so the watchers do not carry the first edit).
    await pair.update(settings({ paused: true }));
    await put(local, 'report.txt', 'edited here, longer');
    await put(server, 'report.txt', 'edited on the server');
    const second = await pair.syncNow();
    expect(second.conflicts).toBe(1);
    const [conflict] = pair.openConflicts();
    expect(conflict).toBeDefined();
    expect(read(local, conflict!.copyPath)).toBe('edited here, longer');

    await pair.update(settings());
    await pair.resolve(conflict!.id, 'local');
    expect(read(local, 'report.txt')).toBe('edited here, longer');
    expect(pair.openConflicts()).toHaveLength(0);
    // The replaced version is in the local trash, in the S4 layout (versions.newTrashDir).
    const days = readdirSync(join(local, '.lipsync', 'trash'));
    expect(days).toHaveLength(1);
    const [stamp] = readdirSync(join(local, '.lipsync', 'trash', days[0]!));
    expect(stamp).toMatch(/^\d{9}$/);
    expect(read(join(local, '.lipsync', 'trash', days[0]!, stamp!), 'report.txt')).toBe('edited on the server');
    await until('the kept version on the server', () => has(server, 'report.txt', 'edited here, longer'));
    await until('the copy gone from the server', () => !existsSync(join(server, conflict!.copyPath)));
  });

  it('a mass deletion pauses the pair until confirmed', async () => {
    const names = ['1', '2', '3', '4', '5', '6'].map((n) => `f${n}.txt`);
    for (const f of names) await put(local, f, `${f} content`);
    const pair = runner();
    await pair.start();
    expect((await pair.syncNow()).ok).toBe(true);
    await pair.update(settings({ paused: true }));
    for (const f of names.slice(0, 5)) unlinkSync(join(local, f));
    await pair.update(settings());
    const refused = await pair.syncNow();
    expect(refused.ok).toBe(false);
    expect(pair.status().state).toBe('paused');
    for (const f of names) expect(existsSync(join(server, f))).toBe(true);
    pair.confirm();
    await until('the deletions on the server', () => tree(server).length === 1);
    expect(tree(server)).toEqual(['f6.txt']);
  });
});
