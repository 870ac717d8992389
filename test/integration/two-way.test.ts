/**
 * Acceptance of two-way sync: two clients (separate config and data dirs,
 * separate daemon processes) and one server folder over the real sshd on
 * 127.0.0.1. Everything goes through the real `lipsync` CLI and daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { cli, requireBuild, treeSnapshot, waitFor } from '../support/cli.js';
import {
  addPair,
  conflictCopyRe,
  conflicts,
  describeResult,
  hashAll,
  liveFiles,
  logSince,
  loggedPaths,
  makeClient,
  makeServerDir,
  pairStatus,
  settle,
  sha256,
  start,
  stop,
  sync,
  syncOk,
  trashContents,
  trashFiles,
  treeDiff,
  waitIdle,
  waitStreaming,
  type Client,
} from '../support/twoway.js';

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

/** Two two-way clients A and B on a fresh server folder. */
async function twoClients(): Promise<{ a: Client; b: Client; remote: string }> {
  const remote = makeServerDir();
  const a = await makeClient(server, remote, 'a');
  const b = await makeClient(server, remote, 'b');
  running.push(a, b);
  return { a, b, remote };
}

/** Starts the daemons and waits until each is idle and streams the server's changes. */
async function startAll(...cs: Client[]): Promise<void> {
  for (const c of cs) await start(c);
  for (const c of cs) {
    await waitIdle(c);
    await waitStreaming(c);
  }
}

async function stopAll(...cs: Client[]): Promise<void> {
  for (const c of cs) {
    const d = c.daemon;
    const code = await stop(c);
    expect(code, `${c.name}'s daemon exit code on SIGINT\n${c.hangReport ?? d?.output() ?? ''}`).toBe(0);
  }
}

const read = (root: string, rel: string) => readFileSync(join(root, rel), 'utf8');
const readOr = (root: string, rel: string) => (existsSync(join(root, rel)) ? read(root, rel) : undefined);

/** The three trees (A, B, server) are identical. */
function expectSameTrees(a: Client, b: Client, remote: string, context = ''): Map<string, string> {
  const ta = treeSnapshot(a.local);
  const tb = treeSnapshot(b.local);
  const ts = treeSnapshot(remote);
  expect(treeDiff('A', ta, 'server', ts), `${context} A vs server`).toBe('');
  expect(treeDiff('B', tb, 'server', ts), `${context} B vs server`).toBe('');
  return ts;
}

/** Names of the live top-level entries of a tree (outside .lipsync/). */
const topNames = (root: string) => readdirSync(root).filter((n) => n !== '.lipsync');

describe('two clients through one server', () => {
  it('a file created on A appears on B, an edit on B appears on A, a delete on A disappears from B and is kept in the server trash', async () => {
    const { a, b, remote } = await twoClients();
    writeFileSync(join(a.local, 'seed.txt'), 'present before the daemons start');
    await startAll(a, b);
    await waitFor(
      () => readOr(b.local, 'seed.txt') === 'present before the daemons start',
      20_000,
      () => a.daemon!.output() + b.daemon!.output(),
    );
    await waitIdle(a);
    await waitIdle(b);

    // Created on A: streamed to the server and on to B within a couple of seconds.
    const since = Date.now();
    writeFileSync(join(a.local, 'hello.txt'), 'hello from A');
    await waitFor(
      () => readOr(b.local, 'hello.txt') === 'hello from A',
      15_000,
      () => `hello.txt on B\nA:\n${a.daemon!.output()}\nB:\n${b.daemon!.output()}`,
    );
    const latency = Date.now() - since;
    expect(latency, 'a new file on A should reach B within about a second or two (daemons running)').toBeLessThan(
      5_000,
    );
    expect(read(remote, 'hello.txt')).toBe('hello from A');
    // The log records are written once each batch is recorded, a moment after the file is in
    // place (B can fetch it before A's stat after its push has returned).
    await waitFor(
      () => loggedPaths(b, 'pull', since).includes('hello.txt'),
      5_000,
      () => "B's pull record",
    );
    await waitFor(
      () => loggedPaths(a, 'push', since).includes('hello.txt'),
      5_000,
      () => "A's push record",
    );
    expect(loggedPaths(a, 'push', since)).toContain('hello.txt');
    expect(loggedPaths(b, 'pull', since), "B's log names what it fetched (event 'pull')").toContain('hello.txt');

    // Edited on B: reaches A.
    await waitIdle(b);
    writeFileSync(join(b.local, 'hello.txt'), 'hello again, edited on B');
    await waitFor(
      () => readOr(a.local, 'hello.txt') === 'hello again, edited on B',
      15_000,
      () => `edit on A\nA:\n${a.daemon!.output()}\nB:\n${b.daemon!.output()}`,
    );
    expect(read(remote, 'hello.txt')).toBe('hello again, edited on B');

    // Deleted on A: gone from the server and B; the server keeps it in its trash.
    await waitIdle(a);
    unlinkSync(join(a.local, 'seed.txt'));
    await waitFor(
      () => !existsSync(join(b.local, 'seed.txt')) && !existsSync(join(remote, 'seed.txt')),
      15_000,
      () => `delete on B\nA:\n${a.daemon!.output()}\nB:\n${b.daemon!.output()}`,
    );
    expect(trashContents(remote, 'seed.txt')).toContain('present before the daemons start');

    await waitIdle(a);
    await waitIdle(b);
    const t = expectSameTrees(a, b, remote);
    expect([...t.keys()]).toEqual(['hello.txt']);
    // No conflict on the way.
    expect(await conflicts(a)).toEqual([]);
    expect(await conflicts(b)).toEqual([]);
    await stopAll(a, b);
  });

  /**
   * notes.txt synced to A and B, then edited on both while no daemon runs;
   * A syncs first, then B, then A again. Returns the versions.
   */
  async function concurrentEdit() {
    const { a, b, remote } = await twoClients();
    writeFileSync(join(a.local, 'notes.txt'), 'base version');
    writeFileSync(join(a.local, 'other.txt'), 'unrelated');
    await syncOk(a);
    await syncOk(b);
    expect(read(b.local, 'notes.txt')).toBe('base version');

    const aVersion = 'edited on A';
    const bVersion = 'edited on B, and a good deal longer than the A version';
    writeFileSync(join(a.local, 'notes.txt'), aVersion);
    writeFileSync(join(b.local, 'notes.txt'), bVersion);
    await syncOk(a, 'A syncs its edit first');
    const rb = await syncOk(b, 'B syncs a conflicting edit');
    await syncOk(a, 'A fetches the conflict copy');

    // One file with the server's (A's) version, one conflict copy with B's, on all three sides.
    const t = expectSameTrees(a, b, remote, 'after the conflict');
    const names = [...t.keys()].sort();
    const copyRe = conflictCopyRe('notes', '.txt', 'laptop-b');
    const copies = names.filter((n) => copyRe.test(n));
    expect(
      copies,
      `conflict copy named "notes (conflicted copy laptop-b YYYY-MM-DD HHMMSS).txt" in ${JSON.stringify(names)}\n${rb.stdout}`,
    ).toHaveLength(1);
    const copy = copies[0]!;
    expect(names).toEqual([copy, 'notes.txt', 'other.txt'].sort());
    expect(read(remote, 'notes.txt')).toBe(aVersion);
    expect(read(remote, copy)).toBe(bVersion);
    return { a, b, remote, aVersion, bVersion, copy };
  }

  it('the same file edited on A and on B before either syncs ends as one file plus one conflict copy, identical everywhere, listed by `lipsync conflicts`', async () => {
    const { b, aVersion, bVersion, copy } = await concurrentEdit();
    const list = await conflicts(b);
    expect(list, JSON.stringify(list)).toHaveLength(1);
    const c = list[0]!;
    expect(c.pair).toBe('docs');
    expect(c.path).toBe('notes.txt');
    expect(c.copyPath).toBe(copy);
    expect(c.id).toBe(`docs-${c.seq}`);
    expect(c.local.size).toBe(Buffer.byteLength(bVersion));
    expect(c.remote.size).toBe(Buffer.byteLength(aVersion));
    expect(typeof c.local.mtime).toBe('number');
    expect(typeof c.remote.mtime).toBe('number');
    expect(typeof c.local.origin).toBe('string');
    expect(typeof c.remote.origin).toBe('string');
    expect(c.createdAt).toBeGreaterThan(Date.now() - 10 * 60_000);
    expect(c.createdAt).toBeLessThanOrEqual(Date.now());
    expect((await pairStatus(b)).conflicts).toBe(1);
    // Text output names the file too.
    const text = await cli(b.e, ['conflicts']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('notes.txt');
  });

  it('resolve --keep local: B’s version takes the name everywhere, the copy goes, A’s version stays in a trash (daemons running)', async () => {
    const { a, b, remote, aVersion, bVersion, copy } = await concurrentEdit();
    const [c] = await conflicts(b);
    await startAll(a, b);
    await waitIdle(a);
    await waitIdle(b);
    const r = await cli(b.e, ['resolve', String(c!.id), '--keep', 'local']);
    expect(r.code, describeResult(b, ['resolve', String(c!.id), '--keep', 'local'], r)).toBe(0);
    await waitFor(
      () => readOr(a.local, 'notes.txt') === bVersion && !existsSync(join(a.local, copy)),
      20_000,
      () => `A gets B's version and loses the copy\nA:\n${a.daemon!.output()}\nB:\n${b.daemon!.output()}`,
    );
    await waitIdle(a);
    await waitIdle(b);
    const t = expectSameTrees(a, b, remote, 'after --keep local');
    expect([...t.keys()].sort()).toEqual(['notes.txt', 'other.txt']);
    expect(read(remote, 'notes.txt')).toBe(bVersion);
    expect(await conflicts(b)).toEqual([]);
    expect((await pairStatus(b)).conflicts).toBe(0);
    const all = hashAll([a.local, b.local, remote]);
    expect(all.has(sha256(aVersion)), "A's version is kept in a trash").toBe(true);
    await stopAll(a, b);
  });

  it('resolve --keep remote: the server’s (A’s) version stays, the copy is removed everywhere, B’s version stays in a trash', async () => {
    const { a, b, remote, aVersion, bVersion } = await concurrentEdit();
    const [c] = await conflicts(b);
    const r = await cli(b.e, ['resolve', String(c!.id), '--keep', 'remote']);
    expect(r.code, describeResult(b, ['resolve', '--keep', 'remote'], r)).toBe(0);
    await settle([b, a]);
    const t = expectSameTrees(a, b, remote, 'after --keep remote');
    expect([...t.keys()].sort()).toEqual(['notes.txt', 'other.txt']);
    expect(read(remote, 'notes.txt')).toBe(aVersion);
    expect(await conflicts(b)).toEqual([]);
    expect((await pairStatus(b)).conflicts).toBe(0);
    const all = hashAll([a.local, b.local, remote]);
    expect(all.has(sha256(bVersion)), "B's version is kept in a trash").toBe(true);
  }, 120_000);

  it('resolve --keep both: both files stay as they are everywhere and the conflict is closed', async () => {
    const { a, b, remote, aVersion, bVersion, copy } = await concurrentEdit();
    const before = treeSnapshot(remote);
    const [c] = await conflicts(b);
    const r = await cli(b.e, ['resolve', String(c!.id), '--keep', 'both']);
    expect(r.code, describeResult(b, ['resolve', '--keep', 'both'], r)).toBe(0);
    await settle([b, a]);
    const t = expectSameTrees(a, b, remote, 'after --keep both');
    expect(treeDiff('before', before, 'after', t)).toBe('');
    expect(read(remote, 'notes.txt')).toBe(aVersion);
    expect(read(remote, copy)).toBe(bVersion);
    expect(await conflicts(b)).toEqual([]);
    expect((await pairStatus(b)).conflicts).toBe(0);
  }, 120_000);

  it('two pairs with a conflict each: IDs unique across pairs, the same in `conflicts`, `resolve` and the API; a bare number is refused as ambiguous', async () => {
    // One client with two pairs, docs and photos, each on its own server folder. A conflict in
    // each: the file edited here and on the server (changed in place) before a sync.
    const docs = await makeClient(server, makeServerDir(), 'b');
    running.push(docs);
    const photos: Client = { ...docs, pair: 'photos', local: join(docs.e.dir, 'photos'), remote: makeServerDir() };
    mkdirSync(photos.local);
    await addPair(server, photos);
    for (const c of [docs, photos]) {
      writeFileSync(join(c.local, 'notes.txt'), 'base');
      await syncOk(c, `${c.pair}: first sync`);
      writeFileSync(join(c.local, 'notes.txt'), `${c.pair}: edited here`);
      writeFileSync(join(c.remote, 'notes.txt'), `${c.pair}: edited on the server, longer`);
      await syncOk(c, `${c.pair}: sync with a conflict`);
    }
    const list = await conflicts(docs);
    expect(list.map((c) => [c.id, c.pair, c.seq, c.path])).toEqual([
      ['docs-1', 'docs', 1, 'notes.txt'],
      ['photos-1', 'photos', 1, 'notes.txt'],
    ]);
    // The text list shows the same IDs, and says how to use them.
    const text = await cli(docs.e, ['conflicts']);
    expect(text.code, describeResult(docs, ['conflicts'], text)).toBe(0);
    expect(text.stdout).toMatch(/^docs-1\t\[docs\] notes\.txt$/m);
    expect(text.stdout).toMatch(/^photos-1\t\[photos\] notes\.txt$/m);

    // The old ID, a bare number, is in both pairs: refused, naming the full IDs.
    const bare = await cli(docs.e, ['resolve', '1', '--keep', 'both']);
    expect(bare.code, describeResult(docs, ['resolve', '1'], bare)).not.toBe(0);
    expect(bare.stderr).toContain('Conflict 1 exists in several pairs (docs, photos)');
    expect(bare.stderr).toContain('docs-1 or photos-1');
    // An ID whose pair does not match --pair is refused; nothing was resolved.
    const mismatch = await cli(docs.e, ['resolve', 'photos-1', '--pair', 'docs', '--keep', 'both']);
    expect(mismatch.code).not.toBe(0);
    expect(mismatch.stderr).toContain('belongs to pair photos, not docs');
    expect((await conflicts(docs)).map((c) => c.id)).toEqual(['docs-1', 'photos-1']);

    // The full ID settles that pair's conflict only.
    const r = await cli(docs.e, ['resolve', 'photos-1', '--keep', 'local']);
    expect(r.code, describeResult(docs, ['resolve', 'photos-1'], r)).toBe(0);
    expect(r.stdout).toContain('Conflict photos-1 resolved: kept local.');
    expect(read(photos.remote, 'notes.txt')).toBe('photos: edited here');
    expect(read(docs.remote, 'notes.txt')).toBe('docs: edited on the server, longer');
    expect((await conflicts(docs)).map((c) => c.id)).toEqual(['docs-1']);

    // Now the bare number is unambiguous again (the IDs before this change keep working).
    const old = await cli(docs.e, ['resolve', '1', '--keep', 'remote']);
    expect(old.code, describeResult(docs, ['resolve', '1'], old)).toBe(0);
    expect(old.stdout).toContain('Conflict docs-1 resolved: kept remote.');
    expect(await conflicts(docs)).toEqual([]);
    expect(read(docs.local, 'notes.txt')).toBe('docs: edited on the server, longer');
  }, 180_000);

  it('an edit made on B while offline survives a delete on A: everyone gets it back', async () => {
    const { a, b, remote } = await twoClients();
    writeFileSync(join(a.local, 'report.txt'), 'v1');
    writeFileSync(join(a.local, 'stays.txt'), 'stays');
    await syncOk(a);
    await syncOk(b);
    expect(read(b.local, 'report.txt')).toBe('v1');

    // A runs and deletes; B is offline.
    await startAll(a);
    unlinkSync(join(a.local, 'report.txt'));
    await waitFor(
      () => !existsSync(join(remote, 'report.txt')),
      15_000,
      () => a.daemon!.output(),
    );
    expect(trashContents(remote, 'report.txt')).toContain('v1');

    // B edits offline, then comes online.
    writeFileSync(join(b.local, 'report.txt'), 'v2, edited on B while offline');
    await start(b);
    await waitFor(
      () => readOr(a.local, 'report.txt') === 'v2, edited on B while offline',
      20_000,
      () => `A gets the file back\nA:\n${a.daemon!.output()}\nB:\n${b.daemon!.output()}`,
    );
    await waitIdle(a);
    await waitIdle(b);
    const t = expectSameTrees(a, b, remote, 'after edit-vs-delete');
    expect([...t.keys()].sort()).toEqual(['report.txt', 'stays.txt']);
    expect(read(remote, 'report.txt')).toBe('v2, edited on B while offline');
    await stopAll(a, b);
  });

  it('a directory of 300 files renamed on A is renamed on the server and on B without sending or fetching its files', async () => {
    const { a, b, remote } = await twoClients();
    mkdirSync(join(a.local, 'album', 'raw'), { recursive: true });
    for (let i = 0; i < 300; i++)
      writeFileSync(join(a.local, 'album', i % 10 ? '' : 'raw', `img-${i}.jpg`), `picture ${i} `.repeat(30));
    writeFileSync(join(a.local, 'readme.txt'), 'outside the album');
    await syncOk(a);
    await syncOk(b);
    expect(liveFiles(b.local)).toHaveLength(301);
    await startAll(a, b);
    await waitIdle(a);
    await waitIdle(b);

    const since = Date.now();
    renameSync(join(a.local, 'album'), join(a.local, 'album-2024'));
    await waitFor(
      () =>
        existsSync(join(b.local, 'album-2024', 'img-299.jpg')) &&
        existsSync(join(b.local, 'album-2024', 'raw', 'img-290.jpg')) &&
        !existsSync(join(b.local, 'album')) &&
        !existsSync(join(remote, 'album')),
      20_000,
      () => `rename on B\nA:\n${a.daemon!.output()}\nB:\n${b.daemon!.output()}`,
    );
    await waitIdle(a);
    await waitIdle(b);
    expectSameTrees(a, b, remote, 'after the directory rename');
    expect(liveFiles(remote).filter((f) => f.startsWith('album-2024/'))).toHaveLength(300);

    const inAlbum = (p: string) => /^album(-2024)?(\/|$)/.test(p);
    const aRecords = logSince(a, since);
    const bRecords = logSince(b, since);
    expect(aRecords.filter((r) => r.event === 'rename').map((r) => [r.from, r.to])).toContainEqual([
      'album',
      'album-2024',
    ]);
    expect(
      bRecords.filter((r) => r.event === 'rename').map((r) => [r.from, r.to]),
      "B's log shows the rename it applied",
    ).toContainEqual(['album', 'album-2024']);
    expect(loggedPaths(a, 'push', since).filter(inAlbum), 'A pushed none of the renamed files').toEqual([]);
    expect(loggedPaths(b, 'pull', since).filter(inAlbum), 'B pulled none of the renamed files').toEqual([]);
    expect(loggedPaths(b, 'push', since).filter(inAlbum), 'B pushed nothing back').toEqual([]);
    // Nothing of the album went to a trash: it was moved, not replaced.
    expect(trashFiles(remote).filter((f) => f.includes('img-'))).toEqual([]);
    expect(trashFiles(b.local).filter((f) => f.includes('img-'))).toEqual([]);
    await stopAll(a, b);
  });
});

describe('directions', () => {
  it('a send-only client never changes its local side', async () => {
    const remote = makeServerDir();
    const s = await makeClient(server, remote, 's', { direction: 'send-only' });
    running.push(s);
    writeFileSync(join(s.local, 'mine.txt'), 'mine');
    writeFileSync(join(s.local, 'shared.txt'), 'shared v1');
    await syncOk(s);
    expect(read(remote, 'shared.txt')).toBe('shared v1');

    // Changes made on the server: new file, modified file, deleted file, new directory.
    writeFileSync(join(remote, 'from-server.txt'), 'made on the server');
    writeFileSync(join(remote, 'shared.txt'), 'changed on the server');
    unlinkSync(join(remote, 'mine.txt'));
    mkdirSync(join(remote, 'server-dir'));
    writeFileSync(join(remote, 'server-dir', 'x.txt'), 'x');
    const before = treeSnapshot(s.local);
    const r = await sync(s);
    expect(r.code, describeResult(s, ['sync'], r)).toBe(0);
    expect(treeDiff('before', before, 'after sync', treeSnapshot(s.local))).toBe('');
    expect(trashFiles(s.local)).toEqual([]);

    await start(s);
    await waitIdle(s);
    writeFileSync(join(remote, 'from-server-2.txt'), 'made on the server while the daemon runs');
    writeFileSync(join(s.local, 'new-local.txt'), 'sent as usual');
    await waitFor(
      () => readOr(remote, 'new-local.txt') === 'sent as usual',
      15_000,
      () => s.daemon!.output(),
    );
    await new Promise((r) => setTimeout(r, 1500));
    await waitIdle(s);
    const after = treeSnapshot(s.local);
    const expected = new Map(before);
    expected.set('new-local.txt', after.get('new-local.txt')!);
    expect(treeDiff('expected', expected, 'local', after)).toBe('');
    expect(trashFiles(s.local)).toEqual([]);
    await stopAll(s);
  });

  it('a receive-only client never changes the server; its local edits are kept aside locally as conflict copies', async () => {
    const remote = makeServerDir();
    writeFileSync(join(remote, 'both.txt'), 'server v1');
    writeFileSync(join(remote, 'mine.txt'), 'server mine v1');
    writeFileSync(join(remote, 'other.txt'), 'other');
    const rc = await makeClient(server, remote, 'r', { direction: 'receive-only' });
    running.push(rc);
    await syncOk(rc);
    expect(treeDiff('server', treeSnapshot(remote), 'local', treeSnapshot(rc.local))).toBe('');

    // Local edits, a local delete, a local new file; and a server edit of one of the edited files.
    writeFileSync(join(rc.local, 'both.txt'), 'edited locally on the receive-only client');
    writeFileSync(join(rc.local, 'mine.txt'), 'mine, edited locally');
    unlinkSync(join(rc.local, 'other.txt'));
    writeFileSync(join(rc.local, 'local-only.txt'), 'never sent');
    writeFileSync(join(remote, 'both.txt'), 'server v2, longer than v1');
    const serverBefore = treeSnapshot(remote);
    const serverTrashBefore = trashFiles(remote);

    const r = await sync(rc);
    expect(r.code, describeResult(rc, ['sync'], r)).toBe(0);
    expect(treeDiff('before', serverBefore, 'server after', treeSnapshot(remote)), 'the server is untouched').toBe('');
    expect(trashFiles(remote)).toEqual(serverTrashBefore);

    // The server's version arrives; the local edit is kept aside as a conflict copy, locally only.
    expect(read(rc.local, 'both.txt')).toBe('server v2, longer than v1');
    const copyRe = conflictCopyRe('both', '.txt', 'laptop-r');
    const copies = topNames(rc.local).filter((n) => copyRe.test(n));
    expect(copies, `local conflict copy of both.txt in ${JSON.stringify(topNames(rc.local))}`).toHaveLength(1);
    expect(read(rc.local, copies[0]!)).toBe('edited locally on the receive-only client');
    // A local edit of a file the server did not change is kept aside the same way (M3, R7).
    expect(read(rc.local, 'mine.txt')).toBe('server mine v1');
    const mineRe = conflictCopyRe('mine', '.txt', 'laptop-r');
    const mineCopies = topNames(rc.local).filter((n) => mineRe.test(n));
    expect(mineCopies, `local conflict copy of mine.txt in ${JSON.stringify(topNames(rc.local))}`).toHaveLength(1);
    expect(read(rc.local, mineCopies[0]!)).toBe('mine, edited locally');
    // A local delete is repaired by pulling again; a local-only new file stays local.
    expect(readOr(rc.local, 'other.txt')).toBe('other');
    expect(read(rc.local, 'local-only.txt')).toBe('never sent');

    // With the daemon: server changes still arrive, local changes still never go up.
    await startAll(rc);
    writeFileSync(join(remote, 'later.txt'), 'later on the server');
    await waitFor(
      () => readOr(rc.local, 'later.txt') === 'later on the server',
      15_000,
      () => rc.daemon!.output(),
    );
    const serverNow = treeSnapshot(remote);
    writeFileSync(join(rc.local, 'later-local.txt'), 'local only');
    await new Promise((r2) => setTimeout(r2, 1500));
    await waitIdle(rc);
    expect(treeDiff('before', serverNow, 'server after', treeSnapshot(remote))).toBe('');
    await stopAll(rc);
  });
});

describe('safety', () => {
  async function syncedClient(n = 10): Promise<{ a: Client; remote: string }> {
    const remote = makeServerDir();
    const a = await makeClient(server, remote, 'a');
    running.push(a);
    for (let i = 0; i < n; i++) writeFileSync(join(a.local, `f${i}.txt`), `file ${i}`);
    mkdirSync(join(a.local, 'sub'));
    writeFileSync(join(a.local, 'sub', 'inner.txt'), 'inner');
    await syncOk(a);
    expect(liveFiles(remote)).toHaveLength(n + 1);
    return { a, remote };
  }

  const serverState = (remote: string) => ({ tree: treeSnapshot(remote), trash: trashFiles(remote) });

  it('a deleted local root: sync fails with a clear error naming it and the server is untouched', async () => {
    const { a, remote } = await syncedClient();
    const before = serverState(remote);
    rmSync(a.local, { recursive: true });
    const r = await sync(a);
    expect(r.code, describeResult(a, ['sync'], r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(a.local);
    expect(r.stdout + r.stderr).toMatch(/missing|does not exist|not found|no such/i);
    expect(serverState(remote)).toEqual(before);

    // The daemon does not read it as "everything was deleted" either.
    await start(a);
    await waitFor(
      async () => (await pairStatus(a)).state === 'error',
      15_000,
      () => a.daemon!.output(),
    );
    await new Promise((r2) => setTimeout(r2, 1000));
    expect(serverState(remote)).toEqual(before);
    await stopAll(a);
  });

  it('a local root renamed away, or replaced by an empty folder: sync fails and the server is untouched; once back, nothing changes', async () => {
    const { a, remote } = await syncedClient();
    const before = serverState(remote);
    renameSync(a.local, `${a.local}-away`);
    const r = await sync(a);
    expect(r.code, describeResult(a, ['sync'], r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(a.local);
    expect(serverState(remote)).toEqual(before);

    // An empty folder in its place (an unmounted disk's mount point).
    mkdirSync(a.local);
    const r2 = await sync(a);
    expect(r2.code, describeResult(a, ['sync'], r2)).not.toBe(0);
    expect(r2.stdout + r2.stderr).toContain(a.local);
    expect(serverState(remote)).toEqual(before);
    expect(readdirSync(a.local).filter((n) => n !== '.lipsync')).toEqual([]);

    rmSync(a.local, { recursive: true });
    renameSync(`${a.local}-away`, a.local);
    await syncOk(a, 'the root is back');
    expect(serverState(remote)).toEqual(before);
    expect(treeDiff('server', treeSnapshot(remote), 'local', treeSnapshot(a.local))).toBe('');
  });

  it('deleting more than half of the files pauses the pair until `lipsync confirm`; then the deletions go through into the server trash', async () => {
    const { a, remote } = await syncedClient(20);
    const before = serverState(remote);
    // Deleted while the daemon is stopped, so that it finds all 15 deletions at once when it starts.
    const deleted = Array.from({ length: 15 }, (_, i) => `f${i}.txt`);
    for (const f of deleted) unlinkSync(join(a.local, f));
    await start(a);

    let st = await pairStatus(a);
    await waitFor(
      async () => (st = await pairStatus(a)).state === 'paused',
      15_000,
      () => `paused for the mass delete; status ${JSON.stringify(st)}\n${a.daemon!.output()}`,
    );
    expect(JSON.stringify(st.reason ?? null), 'the reason says how to go on').toMatch(/confirm/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(serverState(remote), 'the server is untouched while paused').toEqual(before);

    // `lipsync sync` does not go around the question: it ends (no hang), fails and says how to go on.
    const s = await cli(a.e, ['sync', 'docs'], 30_000);
    expect(s.code, describeResult(a, ['sync', 'docs'], s)).not.toBe(0);
    expect(s.stdout + s.stderr).toMatch(/lipsync confirm docs/);
    expect(serverState(remote), 'the server is untouched after lipsync sync').toEqual(before);

    const c = await cli(a.e, ['confirm', 'docs']);
    expect(c.code, describeResult(a, ['confirm', 'docs'], c)).toBe(0);
    await waitFor(
      () => deleted.every((f) => !existsSync(join(remote, f))),
      15_000,
      () => a.daemon!.output(),
    );
    await waitIdle(a);
    expect(treeDiff('server', treeSnapshot(remote), 'local', treeSnapshot(a.local))).toBe('');
    for (const f of deleted) expect(trashContents(remote, f), f).toEqual([`file ${f.slice(1, -4)}`]);
    expect(liveFiles(remote).sort()).toEqual(['f15.txt', 'f16.txt', 'f17.txt', 'f18.txt', 'f19.txt', 'sub/inner.txt']);
    await stopAll(a);
  });
});

describe('first sync', () => {
  it('two clients joining one empty server folder at the same moment both keep syncing with it', async () => {
    // Both find no marker and each writes one: the first written stands and both record it
    // (before, the second overwrote it and the first client refused the folder from then on).
    for (let round = 0; round < 3; round++) {
      const { a, b, remote } = await twoClients();
      writeFileSync(join(a.local, 'from-a.txt'), `a${round}`);
      writeFileSync(join(b.local, 'from-b.txt'), `b${round}`);
      const [ra, rb] = await Promise.all([sync(a), sync(b)]);
      expect(ra.code, describeResult(a, ['sync', a.pair], ra)).toBe(0);
      expect(rb.code, describeResult(b, ['sync', b.pair], rb)).toBe(0);
      const marker = read(remote, '.lipsync/pair-id');
      await settle([a, b], { context: `round ${round}` });
      expect(read(remote, '.lipsync/pair-id')).toBe(marker);
      expectSameTrees(a, b, remote, `round ${round}`);
      expect(read(remote, 'from-a.txt')).toBe(`a${round}`);
      expect(read(remote, 'from-b.txt')).toBe(`b${round}`);
      for (const c of [a, b]) expect((await pairStatus(c)).reason, c.name).toBeUndefined();
    }
    // Three rounds of two new clients each, with settles: about 40 s alone, more on a busy machine.
  }, 180_000);

  it('with files on both sides and no base: the union, a conflict copy for a path with different content, nothing deleted', async () => {
    const remote = makeServerDir();
    writeFileSync(join(remote, 'only-server.txt'), 'server only');
    writeFileSync(join(remote, 'same.txt'), 'same on both');
    writeFileSync(join(remote, 'differ.txt'), 'the server version');
    mkdirSync(join(remote, 'server-dir'));
    writeFileSync(join(remote, 'server-dir', 'x.txt'), 'x');
    const a = await makeClient(server, remote, 'a', { add: false });
    running.push(a);
    writeFileSync(join(a.local, 'only-local.txt'), 'local only');
    writeFileSync(join(a.local, 'same.txt'), 'same on both');
    writeFileSync(join(a.local, 'differ.txt'), 'the local version, longer');
    mkdirSync(join(a.local, 'local-dir'));
    writeFileSync(join(a.local, 'local-dir', 'y.txt'), 'y');
    await addPair(server, a);

    const r = await syncOk(a, 'first sync');
    const ts = treeSnapshot(remote);
    expect(treeDiff('server', ts, 'local', treeSnapshot(a.local)), r.stdout).toBe('');
    const copyRe = conflictCopyRe('differ', '.txt', 'laptop-a');
    const names = [...ts.keys()].sort();
    const copies = names.filter((n) => copyRe.test(n));
    expect(copies, JSON.stringify(names)).toHaveLength(1);
    expect(names).toEqual(
      [
        copies[0]!,
        'differ.txt',
        'local-dir',
        'local-dir/y.txt',
        'only-local.txt',
        'only-server.txt',
        'same.txt',
        'server-dir',
        'server-dir/x.txt',
      ].sort(),
    );
    expect(read(remote, 'differ.txt')).toBe('the server version');
    expect(read(remote, copies[0]!)).toBe('the local version, longer');
    expect(read(remote, 'same.txt')).toBe('same on both');
    // Nothing deleted: no trash on either side.
    expect(trashFiles(remote)).toEqual([]);
    expect(trashFiles(a.local)).toEqual([]);
    const list = await conflicts(a);
    expect(list.map((c) => [c.path, c.copyPath])).toEqual([['differ.txt', copies[0]!]]);

    // A second client with its own files joins: the union again, nothing deleted.
    const b = await makeClient(server, remote, 'b', { add: false });
    running.push(b);
    writeFileSync(join(b.local, 'from-b.txt'), 'b');
    writeFileSync(join(b.local, 'same.txt'), 'same on both');
    await addPair(server, b);
    await settle([b, a]);
    const t = expectSameTrees(a, b, remote, 'after B joined');
    expect([...t.keys()].sort()).toEqual([...names, 'from-b.txt'].sort());
    expect(trashFiles(remote)).toEqual([]);
  });
});
