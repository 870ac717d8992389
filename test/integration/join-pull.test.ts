/**
 * A second computer joining a folder another one filled (issue 18 §2): new server folders
 * are pulled whole (docs/sync-semantics.md, "New folders", T3 and T4): one recursive rsync
 * into this computer's .lipsync/incoming, checked against the server's listing, moved into
 * place where still absent here, recorded. Real sshd, rsync, CLI and daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { readLogRecords, requireBuild, treeSnapshot } from '../support/cli.js';
import {
  kill9,
  makeClient,
  makeServerDir,
  patchConfig,
  start,
  stop,
  syncOk,
  waitIdle,
  type Client,
} from '../support/twoway.js';

let server: SshServer;

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  await server?.stop();
});

/** The activity log's messages of `event` records since `since`. */
function messages(c: Client, event: string, since = 0): string[] {
  return readLogRecords(c.e)
    .filter((r) => r.t >= since && r.event === event)
    .map((r) => String((r as { msg?: unknown }).msg));
}
/** The folders the log says were pulled whole. */
const pulledWhole = (c: Client, since = 0) =>
  messages(c, 'pull', since).reduce((n, m) => n + Number(/in (\d+) new folders?/.exec(m)?.[1] ?? 0), 0);
const staging = (c: Client) => {
  const d = join(c.local, '.lipsync', 'incoming');
  return existsSync(d) ? readdirSync(d) : [];
};
/** Whether a staging folder here holds anything yet (a pull of a run is on its way). */
const stagingBusy = (c: Client) =>
  staging(c).some((s) => readdirSync(join(c.local, '.lipsync', 'incoming', s)).length > 0);
const copiesIn = (root: string) =>
  readdirSync(root, { recursive: true }).filter((e) => /conflicted copy/.test(String(e)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Client A fills a new server folder: `tops` folders of `per` files each, written by A's first sync. */
async function filledServer(tops: number, per: number): Promise<{ remote: string; a: Client }> {
  const remote = makeServerDir();
  const a = await makeClient(server, remote, 'a');
  for (let t = 0; t < tops; t++) {
    mkdirSync(join(a.local, `top${t}/sub`), { recursive: true });
    for (let i = 0; i < per; i++)
      writeFileSync(join(a.local, `top${t}${i % 2 ? '/sub' : ''}/f${i}.txt`), `${t}-${i} `.repeat(200));
  }
  await syncOk(a, 'A fills the server');
  return { remote, a };
}

describe('a second computer joins a folder another one filled', () => {
  it('into an empty folder: everything arrives whole, the base is complete, the next sync moves nothing; a link outside the root is not followed', async () => {
    const { remote } = await filledServer(3, 100);
    const outside = mkdtempSync(join(tmpdir(), 'lipsync-outside-'));
    writeFileSync(join(outside, 'secret.txt'), 'SECRET outside the root\n');
    // On the server: a link to a folder outside the root, a folder that is itself such a
    // link, an executable, and what the built-in excludes leave out.
    symlinkSync(outside, join(remote, 'top0/out'));
    symlinkSync(outside, join(remote, 'outlink'));
    writeFileSync(join(remote, 'top1/run.sh'), '#!/bin/sh\n');
    chmodSync(join(remote, 'top1/run.sh'), 0o755);
    writeFileSync(join(remote, 'top1/.x.swp'), 'swap\n');

    const b = await makeClient(server, remote, 'b');
    await syncOk(b, "B's first sync");
    const want = treeSnapshot(remote);
    want.delete('top1/.x.swp');
    expect(treeSnapshot(b.local)).toEqual(want);
    expect(readlinkSync(join(b.local, 'top0/out'))).toBe(outside);
    expect(lstatSync(join(b.local, 'outlink')).isSymbolicLink()).toBe(true);
    expect(
      [...treeSnapshot(b.local).keys()].filter((k) => k.includes('secret')),
      'nothing read through a link',
    ).toEqual([]);
    expect(pulledWhole(b)).toBe(3);
    expect(staging(b)).toEqual([]);
    expect(copiesIn(b.local)).toEqual([]);

    const since = Date.now();
    await syncOk(b, 'no-op sync');
    expect(messages(b, 'pull', since)).toEqual([]);
    expect(messages(b, 'push', since)).toEqual([]);
  });

  it('with files of its own: what differs is kept as a conflict copy, nothing is overwritten, the rest is merged', async () => {
    const { remote } = await filledServer(4, 20);
    const b = await makeClient(server, remote, 'b');
    // B holds top0 (identical, copied with its mtimes by rsync) and top1 with one file different.
    for (const t of ['top0', 'top1']) {
      mkdirSync(join(b.local, t, 'sub'), { recursive: true });
      for (const f of readdirSync(join(remote, t), { recursive: true })) {
        const p = join(remote, t, String(f));
        if (lstatSync(p).isFile()) writeFileSync(join(b.local, t, String(f)), readFileSync(p));
      }
    }
    writeFileSync(join(b.local, 'top1/f2.txt'), 'B edited this before joining\n');
    writeFileSync(join(b.local, 'top1/mine.txt'), 'only on B\n');
    await syncOk(b, "B's first sync");
    expect(readFileSync(join(b.local, 'top1/f2.txt'), 'utf8')).toBe(readFileSync(join(remote, 'top1/f2.txt'), 'utf8'));
    const copies = copiesIn(b.local);
    expect(copies).toHaveLength(1);
    expect(readFileSync(join(b.local, String(copies[0])), 'utf8')).toBe('B edited this before joining\n');
    expect(readFileSync(join(remote, 'top1/mine.txt'), 'utf8')).toBe('only on B\n');
    expect(pulledWhole(b)).toBe(2); // top2 and top3
    expect(treeSnapshot(b.local)).toEqual(treeSnapshot(remote));
  });

  it('killed mid-pull: the next start removes the staging folder, converges, nothing lost', async () => {
    const { remote } = await filledServer(16, 60);
    const b = await makeClient(server, remote, 'b');
    patchConfig(b.e, {}, { bwLimitKBps: 300 }); // a pull of a few seconds
    await start(b);
    await until(() => stagingBusy(b), 60_000, 'the pull to begin');
    await sleep(300);
    await kill9(b);
    expect(staging(b).length).toBeGreaterThan(0);
    patchConfig(b.e, {}, { bwLimitKBps: 0 });
    await syncOk(b, 'the sync after the kill');
    expect(staging(b)).toEqual([]);
    expect(treeSnapshot(b.local)).toEqual(treeSnapshot(remote));
    expect(copiesIn(b.local)).toEqual([]);
    expect(copiesIn(remote)).toEqual([]);
  });

  it('a file made here in a folder not in place yet, and a file changed on the server, during the pull: both kept, no conflict', async () => {
    const { remote, a } = await filledServer(16, 60);
    const b = await makeClient(server, remote, 'b');
    patchConfig(b.e, {}, { bwLimitKBps: 300 });
    await start(b);
    try {
      await until(() => stagingBusy(b), 60_000, 'the pull to begin');
      // A folder of the last runs, not here yet: B makes a file in it.
      const later = 'top15';
      expect(existsSync(join(b.local, later))).toBe(false);
      mkdirSync(join(b.local, later));
      writeFileSync(join(b.local, later, 'mine.txt'), 'made on B during the pull\n');
      // A file on the server changes (A's edit) while B pulls.
      appendFileSync(join(remote, 'top14/f3.txt'), 'edited on the server during the pull\n');
      await waitIdle(b, 120_000);
      await syncOk(b, 'one more sync');
      await syncOk(a, "A's sync");
      expect(readFileSync(join(b.local, later, 'mine.txt'), 'utf8')).toBe('made on B during the pull\n');
      expect(readFileSync(join(remote, later, 'mine.txt'), 'utf8')).toBe('made on B during the pull\n');
      expect(readFileSync(join(b.local, 'top14/f3.txt'), 'utf8')).toMatch(/edited on the server during the pull\n$/);
      expect(treeSnapshot(b.local)).toEqual(treeSnapshot(remote));
      expect(copiesIn(b.local)).toEqual([]);
      expect(staging(b)).toEqual([]);
    } finally {
      await stop(b);
    }
  });
});
