/**
 * Restart after a clean stop (docs/sync-semantics.md, "Restart after a clean
 * stop"): the daemon looks only at what changed since the stop (local ctimes,
 * the server's marker), not at every file, and still finds every kind of
 * change made while it was stopped, on both sides. After a kill -9 it looks
 * since the run's last checkpoint (crash-checkpoint.test.ts tests that at random
 * kill points); with settings changed while stopped, it compares everything again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { existsSync, renameSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { readLogRecords, requireBuild, treeSnapshot, waitFor } from '../support/cli.js';
import {
  kill9,
  liveFiles,
  makeClient,
  makeServerDir,
  patchConfig,
  start,
  stop,
  waitIdle,
  waitStreaming,
  type Client,
} from '../support/twoway.js';
import { put, read } from '../support/trees.js';
import { withEnv } from '../support/env.js';
import { procsWhere } from '../support/server-procs.js';

let server: SshServer;
const running: Client[] = [];

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  for (const c of running) await stop(c);
  await server?.stop();
});

const SINCE_MSG = /started after a clean stop: looked at what changed since/;

/** The clean-stop messages logged after `t`. */
function sinceMessages(c: Client, t: number): string[] {
  return readLogRecords(c.e)
    .filter((r) => r.t >= t && SINCE_MSG.test(String(r.msg)))
    .map((r) => String(r.msg));
}

/** A client with a synced tree of a few folders, its daemon stopped cleanly. */
async function syncedClient(): Promise<{ c: Client; remote: string }> {
  const remote = makeServerDir();
  for (let d = 0; d < 3; d++) for (let f = 0; f < 5; f++) await put(remote, `d${d}/f${f}.txt`, `server ${d}/${f}\n`);
  const c = await makeClient(server, remote, 'r');
  for (let f = 0; f < 3; f++) await put(c.local, `mine/m${f}.txt`, `local ${f}\n`);
  running.push(c);
  await start(c);
  await waitIdle(c, 60_000);
  await waitStreaming(c);
  // The server watcher's late reports of the first sync may still start a short cycle.
  await new Promise((r) => setTimeout(r, 1000));
  await waitIdle(c, 60_000);
  expect(treeSnapshot(c.local)).toEqual(treeSnapshot(remote));
  return { c, remote };
}

const sameTrees = (c: Client, remote: string) => expect(treeSnapshot(c.local)).toEqual(treeSnapshot(remote));

// Both ways of listing what changed since: the watchers' first walks (walkwatch, perl, the
// default), and inotifywait followed by find on each side (LIPSYNC_WALKWATCH=0).
describe.each([
  ["listed by the watchers' first walks (walkwatch)", undefined],
  ['listed by find after inotifywait (LIPSYNC_WALKWATCH=0)', '0'],
] as const)('restart after a clean stop, %s', (_name, env) => {
  withEnv('LIPSYNC_WALKWATCH', env);

  it('finds every change made on either side while stopped, looking only at what changed', async () => {
    const { c, remote } = await syncedClient();
    expect(await stop(c)).toBe(0);

    // While stopped, here: an edit, a deletion, a rename of a folder, a folder moved in
    // from outside the pair (its files keep their old ctimes), an emptied folder.
    await put(c.local, 'd0/f0.txt', 'edited here while stopped\n');
    unlinkSync(join(c.local, 'd0/f1.txt'));
    renameSync(join(c.local, 'd1'), join(c.local, 'd1-renamed'));
    const outside = join(tmpdir(), `lipsync-outside-${process.pid}-${Date.now()}`);
    for (let f = 0; f < 4; f++) await put(outside, `deep/er/o${f}.txt`, `moved in ${f}\n`);
    renameSync(outside, join(c.local, 'moved-in'));
    for (let f = 0; f < 3; f++) unlinkSync(join(c.local, `mine/m${f}.txt`));
    // ... and on the server: an edit, a deletion, a new file in a new folder.
    await put(remote, 'd2/f0.txt', 'edited on the server while stopped\n');
    unlinkSync(join(remote, 'd2/f1.txt'));
    await put(remote, 'new-on-server/n.txt', 'new on the server\n');

    const t = Date.now();
    await start(c);
    await waitIdle(c, 60_000);
    const msgs = sinceMessages(c, t);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).not.toMatch(/everything/);

    sameTrees(c, remote);
    expect(read(remote, 'd0/f0.txt')).toBe('edited here while stopped\n');
    expect(existsSync(join(remote, 'd0/f1.txt'))).toBe(false);
    expect(existsSync(join(remote, 'd1'))).toBe(false);
    expect(read(remote, 'd1-renamed/f3.txt')).toBe('server 1/3\n');
    expect(read(remote, 'moved-in/deep/er/o2.txt')).toBe('moved in 2\n');
    expect(liveFiles(remote).filter((f) => f.startsWith('mine/'))).toEqual([]);
    expect(read(c.local, 'd2/f0.txt')).toBe('edited on the server while stopped\n');
    expect(existsSync(join(c.local, 'd2/f1.txt'))).toBe(false);
    expect(read(c.local, 'new-on-server/n.txt')).toBe('new on the server\n');

    // A second clean restart with nothing changed finds nothing to do.
    expect(await stop(c)).toBe(0);
    const t2 = Date.now();
    await start(c);
    await waitIdle(c, 60_000);
    expect(sinceMessages(c, t2)).toHaveLength(1);
    const moved = readLogRecords(c.e).filter(
      (r) => r.t >= t2 && ['push', 'pull', 'delete', 'rename', 'conflict'].includes(String(r.event)),
    );
    expect(moved).toEqual([]);
    sameTrees(c, remote);
    await stop(c);
  });

  it('after a kill -9 looks since the last checkpoint; compares everything when the excludes changed while stopped', async () => {
    const { c, remote } = await syncedClient();
    // Excluded while running: stays here only.
    patchConfig(c.e, {}, { excludes: ['*.tmp'] });
    await stop(c);
    await start(c);
    await waitIdle(c, 60_000);
    await put(c.local, 'keep.tmp', 'excluded at first\n');
    await new Promise((r) => setTimeout(r, 500));
    await waitIdle(c, 60_000);
    expect(existsSync(join(remote, 'keep.tmp'))).toBe(false);

    // Unclean end: no clean-stop record; the run's checkpoint (taken when it went quiet) is used.
    await kill9(c);
    await put(c.local, 'after-kill.txt', 'written while dead\n');
    const t = Date.now();
    await start(c);
    await waitIdle(c, 60_000);
    expect(sinceMessages(c, t)).toEqual([]);
    expect(readLogRecords(c.e).filter((r) => r.t >= t && /since the last checkpoint/.test(String(r.msg)))).toHaveLength(
      1,
    );
    expect(read(remote, 'after-kill.txt')).toBe('written while dead\n');

    // Excludes removed while stopped: keep.tmp (unchanged, old ctime) must now go up.
    expect(await stop(c)).toBe(0);
    patchConfig(c.e, {}, { excludes: [] });
    const t2 = Date.now();
    await start(c);
    await waitIdle(c, 60_000);
    expect(sinceMessages(c, t2)).toEqual([]);
    expect(read(remote, 'keep.tmp')).toBe('excluded at first\n');
    sameTrees(c, remote);
    await stop(c);
  });
});

const RESUMED_MSG = /resumed the server's change journal where the last stop left it/;

/** The clean-stop record in the pair's database (the daemon stopped); `edit` rewrites it. */
function cleanStopRecord(c: Client, edit?: (r: Record<string, unknown>) => void): Record<string, unknown> {
  const db = new Database(join(c.e.dataDir, 'state', `${c.pair}.db`), { fileMustExist: true });
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'cleanStop'").get() as { value: string } | undefined;
    const r = JSON.parse(row?.value ?? 'null') as Record<string, unknown>;
    if (edit) {
      edit(r);
      db.prepare("UPDATE meta SET value = ? WHERE key = 'cleanStop'").run(JSON.stringify(r));
    }
    return r;
  } finally {
    db.close();
  }
}

/** Changes on the server while the client is stopped: an edit, a deletion, a folder renamed, a new folder. */
async function changeServer(remote: string): Promise<void> {
  await put(remote, 'd2/f0.txt', 'edited on the server while stopped\n');
  unlinkSync(join(remote, 'd2/f1.txt'));
  renameSync(join(remote, 'd1'), join(remote, 'd1-moved'));
  await put(remote, 'new-on-server/deep/n.txt', 'new on the server\n');
}

async function serverChangesArrived(c: Client, remote: string): Promise<void> {
  expect(read(c.local, 'd2/f0.txt')).toBe('edited on the server while stopped\n');
  expect(existsSync(join(c.local, 'd2/f1.txt'))).toBe(false);
  expect(existsSync(join(c.local, 'd1'))).toBe(false);
  expect(read(c.local, 'd1-moved/f3.txt')).toBe('server 1/3\n');
  expect(read(c.local, 'new-on-server/deep/n.txt')).toBe('new on the server\n');
  sameTrees(c, remote);
}

/**
 * Changes the server while the client is stopped, starts the client, checks that every change
 * arrived, and returns the restart's messages: resumed in the journal, and the clean-stop summary.
 */
async function restartAfterServerChanges(c: Client, remote: string): Promise<{ resumed: number; since: string[] }> {
  await changeServer(remote);
  const t = Date.now();
  await start(c);
  await waitIdle(c, 60_000);
  await serverChangesArrived(c, remote);
  const resumed = readLogRecords(c.e).filter((r) => r.t >= t && RESUMED_MSG.test(String(r.msg))).length;
  return { resumed, since: sinceMessages(c, t) };
}

// J8 (docs/sync-semantics.md): a clean stop records the shared watcher's journal position; the
// next start resumes there instead of walking the server, and walks only when it is gone.
describe('restart at the journal position of the last stop (J8)', () => {
  it('resumes there: what changed on the server while stopped arrives, and the server is not walked', async () => {
    const { c, remote } = await syncedClient();
    expect(await stop(c)).toBe(0);
    expect(cleanStopRecord(c).remotePos).toMatch(/^\d+:\d+$/);
    const m = await restartAfterServerChanges(c, remote);
    expect(m.resumed).toBe(1);
    expect(m.since).toHaveLength(1);
    expect(m.since[0]).not.toMatch(/everything/);
    await stop(c);
  });

  it('also when the shared watcher ended while the client was stopped (the next one lists what changed meanwhile)', async () => {
    const { c, remote } = await syncedClient();
    expect(await stop(c)).toBe(0);
    // J5: with no client left, the watcher exits within about 10 s.
    const watchers = () => procsWhere((a) => a.join(' ').startsWith(`lipsync journal ${remote}`));
    await waitFor(
      async () => watchers().length === 0,
      30_000,
      () => `the shared watcher of ${remote} to exit`,
    );
    expect((await restartAfterServerChanges(c, remote)).resumed).toBe(1);
    await stop(c);
  });

  it('lists what changed since the stop when the position is gone (the journal rotated past it)', async () => {
    const { c, remote } = await syncedClient();
    expect(await stop(c)).toBe(0);
    // Generation 1 never exists: journal files are named by the clock's seconds.
    cleanStopRecord(c, (r) => (r.remotePos = '1:0'));
    const m = await restartAfterServerChanges(c, remote);
    expect(m.resumed).toBe(0);
    expect(m.since).toHaveLength(1);
    expect(m.since[0]).not.toMatch(/everything/);
    await stop(c);
  });
});
