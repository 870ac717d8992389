/**
 * Issue 15, item 2 (rule N5 of docs/sync-semantics.md): lipsync reads, renames,
 * writes and deletes nothing through a symlink, on either side. Each test plays
 * a hostile second client on the server (the server folder is changed directly,
 * as another client with write access would) or the user on the laptop swapping
 * a synced symlink for a real folder, with a sentinel folder outside both roots
 * that the symlinks point at. Every test asserts: the sentinel is unchanged
 * (digest), none of its content reached the server (its trash included) or the
 * laptop's root, no version is lost, and the pair settles by itself (a running
 * daemon, no `lipsync sync` after the swap).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { readLogRecords, requireBuild, waitFor } from '../support/cli.js';
import { makeSentinel, sentinelIntact, sentinelLeaks, type Sentinel } from '../support/sentinel.js';
import {
  addPair,
  conflicts,
  makeClient,
  pairStatus,
  start,
  stop,
  trashContents,
  waitIdle,
  waitStreaming,
  sleep,
  type Client,
  type Direction,
} from '../support/twoway.js';

let server: SshServer;
const clients: Client[] = [];

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  for (const c of clients) await stop(c);
  await server?.stop();
});

/**
 * A running client whose local root (DIR/local) and server folder (DIR/server) are
 * siblings, and a sentinel beside them (DIR/victim-XXXXXX): a relative link
 * `../victim-XXXXXX` in either root points at it.
 */
async function setup(direction: Direction = 'two-way'): Promise<{ c: Client; s: Sentinel; link: string }> {
  const c = await makeClient(server, '', 'a', { add: false });
  c.remote = join(c.e.dir, 'server');
  mkdirSync(c.remote);
  await addPair(server, c, direction);
  clients.push(c);
  const s = makeSentinel(`${relative(tmpdir(), c.e.dir)}/victim-`);
  await start(c);
  await waitIdle(c, 60_000);
  if (direction !== 'send-only') await waitStreaming(c); // send-only does not watch the server
  return { c, s, link: `../${basename(s.dir)}` };
}

const read = (p: string) => readFileSync(p, 'utf8');
function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
const isLink = (p: string) => lstatExists(p) && lstatSync(p).isSymbolicLink();
const isDir = (p: string) => lstatExists(p) && lstatSync(p).isDirectory() && !lstatSync(p).isSymbolicLink();
const fileIs = (p: string, text: string) => lstatExists(p) && lstatSync(p).isFile() && read(p) === text;

/** Nothing outside the roots changed, and nothing of it is inside them (trash included). */
function expectSentinelSafe(c: Client, s: Sentinel): void {
  expect(sentinelIntact(s), 'the sentinel folder outside the roots changed').toBe(true);
  expect(sentinelLeaks(s, c.remote), 'sentinel content on the server').toEqual([]);
  expect(sentinelLeaks(s, c.local), 'sentinel content in the local root').toEqual([]);
}

async function settled(c: Client, cond: () => boolean, what: string): Promise<void> {
  await waitFor(cond, 60_000, () => `${what}\n${c.daemon?.output().slice(-3000) ?? ''}`);
  await waitIdle(c, 60_000);
}

// Generous: each test waits for a daemon to settle by itself, more than once.
describe('N5: nothing through a symlink, on either side', () => {
  it('a server symlink to an outside folder, replaced by a real folder with a decoy: the decoy arrives, the outside file is untouched', async () => {
    const { c, s } = await setup();
    // Another client plants an absolute link to the outside folder; the laptop gets it as a link.
    symlinkSync(s.dir, join(c.remote, 'keys'));
    await settled(c, () => isLink(join(c.local, 'keys')), 'keys arrives as a link');
    expect(readlinkSync(join(c.local, 'keys'))).toBe(s.dir);

    // It replaces the link by a real folder holding a file named like one outside.
    unlinkSync(join(c.remote, 'keys'));
    mkdirSync(join(c.remote, 'keys'));
    writeFileSync(join(c.remote, 'keys', 'id_decoy'), 'decoy from the server\n');
    writeFileSync(join(c.remote, 'keys', 'notes.txt'), 'notes from the server\n');
    await settled(
      c,
      () =>
        fileIs(join(c.local, 'keys', 'id_decoy'), 'decoy from the server\n') &&
        fileIs(join(c.local, 'keys', 'notes.txt'), 'notes from the server\n'),
      'the decoy arrives in a real local folder',
    );
    expect(isDir(join(c.local, 'keys'))).toBe(true);
    expect(read(join(c.remote, 'keys', 'id_decoy'))).toBe('decoy from the server\n');
    expect(await conflicts(c)).toEqual([]);
    expectSentinelSafe(c, s);
  }, 240_000);

  it('a relative server symlink ../victim, replaced by a real folder: nothing outside is renamed or sent', async () => {
    const { c, s, link } = await setup();
    symlinkSync(link, join(c.remote, 'rel'));
    await settled(c, () => isLink(join(c.local, 'rel')), 'rel arrives as a link');
    expect(read(join(c.local, 'rel', 'victim'))).toContain(s.marker); // it does point outside, here too

    unlinkSync(join(c.remote, 'rel'));
    mkdirSync(join(c.remote, 'rel', 'sub'), { recursive: true });
    writeFileSync(join(c.remote, 'rel', 'victim'), 'server victim\n');
    writeFileSync(join(c.remote, 'rel', 'sub', 'deep.txt'), 'server deep\n');
    await settled(
      c,
      () =>
        fileIs(join(c.local, 'rel', 'victim'), 'server victim\n') &&
        fileIs(join(c.local, 'rel', 'sub', 'deep.txt'), 'server deep\n'),
      'the server folder arrives',
    );
    expect(isDir(join(c.local, 'rel'))).toBe(true);
    expect(await conflicts(c)).toEqual([]);
    expectSentinelSafe(c, s);
  }, 240_000);

  it('a synced folder replaced on the server by a symlink: the laptop keeps its versions in its trash, nothing outside moves, resolve too', async () => {
    const { c, s, link } = await setup();
    // A synced folder holding names that also exist in the outside folder.
    mkdirSync(join(c.local, 'docs', 'sub'), { recursive: true });
    writeFileSync(join(c.local, 'docs', 'notes.txt'), 'laptop notes\n');
    writeFileSync(join(c.local, 'docs', 'victim'), 'laptop victim\n');
    writeFileSync(join(c.local, 'docs', 'sub', 'deep.txt'), 'laptop deep\n');
    await settled(
      c,
      () =>
        fileIs(join(c.remote, 'docs', 'notes.txt'), 'laptop notes\n') &&
        fileIs(join(c.remote, 'docs', 'sub', 'deep.txt'), 'laptop deep\n'),
      'docs reaches the server',
    );

    // Another client replaces the folder by a link to the outside folder.
    rmSync(join(c.remote, 'docs'), { recursive: true });
    symlinkSync(link, join(c.remote, 'docs'));
    await settled(c, () => isLink(join(c.local, 'docs')), 'docs becomes a link here too (N1)');
    expect(readlinkSync(join(c.local, 'docs'))).toBe(link);
    // The laptop's versions went to its trash (S4): none lost.
    expect(trashContents(c.local, 'docs/notes.txt')).toContain('laptop notes\n');
    expect(trashContents(c.local, 'docs/victim')).toContain('laptop victim\n');
    expect(trashContents(c.local, 'docs/sub/deep.txt')).toContain('laptop deep\n');
    expectSentinelSafe(c, s);

    // Nothing below the link was decided, so no conflict arises whose resolve could rename
    // files below it (resolve's own refusal: renameInRoot in test/unit/safe-fs.test.ts).
    expect(await conflicts(c)).toEqual([]);
    await waitIdle(c, 60_000);
    expect(isLink(join(c.remote, 'docs'))).toBe(true);
    expectSentinelSafe(c, s);
  }, 240_000);

  it("the server's trash swapped for a symlink: nothing is written through it; once removed, the pair goes on by itself", async () => {
    const { c, s } = await setup();
    writeFileSync(join(c.local, 'f.txt'), 'version 1\n');
    await settled(c, () => fileIs(join(c.remote, 'f.txt'), 'version 1\n'), 'f.txt reaches the server');

    // Another client replaces the server's trash by a link to the outside folder.
    rmSync(join(c.remote, '.lipsync', 'trash'), { recursive: true, force: true });
    symlinkSync(s.dir, join(c.remote, '.lipsync', 'trash'));
    writeFileSync(join(c.local, 'f.txt'), 'version 2, longer\n'); // its push would trash version 1
    let reason = '';
    await waitFor(
      async () => {
        reason = (await pairStatus(c)).reason?.message ?? '';
        return /symlink or a file/.test(reason);
      },
      60_000,
      () => `the pair to report the planted link; last reason ${JSON.stringify(reason)}`,
    );
    expect(read(join(c.remote, 'f.txt'))).toBe('version 1\n');
    expectSentinelSafe(c, s);

    // The link is removed on the server: the retry goes on without a manual sync.
    unlinkSync(join(c.remote, '.lipsync', 'trash'));
    await waitFor(
      () => fileIs(join(c.remote, 'f.txt'), 'version 2, longer\n'),
      120_000,
      () => 'version 2 arrives',
    );
    await waitIdle(c, 60_000);
    expect(trashContents(c.remote, 'f.txt')).toContain('version 1\n');
    expectSentinelSafe(c, s);
  }, 240_000);

  it('send-only: a synced folder replaced on the server by a link; the local edit below it waits, nothing loops or leaks', async () => {
    const { c, s, link } = await setup('send-only');
    mkdirSync(join(c.local, 'docs'));
    writeFileSync(join(c.local, 'docs', 'notes.txt'), 'laptop notes\n');
    await settled(c, () => fileIs(join(c.remote, 'docs', 'notes.txt'), 'laptop notes\n'), 'docs reaches the server');

    rmSync(join(c.remote, 'docs'), { recursive: true });
    symlinkSync(link, join(c.remote, 'docs'));
    writeFileSync(join(c.local, 'docs', 'notes.txt'), 'laptop notes, edited\n'); // a push would go through the link
    const held = () =>
      readLogRecords(c.e).filter((r) => /\(N5\)/.test(String(r.msg)) && (r.paths ?? []).includes('docs/notes.txt'))
        .length;
    await waitFor(
      () => held() > 0,
      60_000,
      () => `the edit to be held back (N5)\n${c.daemon?.output() ?? ''}`,
    );
    await waitIdle(c, 60_000);
    // Held once per look at it, not retried in a loop: a few seconds later it is still idle.
    const n = held();
    await sleep(3000);
    expect(held()).toBe(n);
    expect((await pairStatus(c)).state).toBe('idle');
    expect(readlinkSync(join(c.remote, 'docs'))).toBe(link);
    expect(read(join(c.local, 'docs', 'notes.txt'))).toBe('laptop notes, edited\n'); // kept here
    expectSentinelSafe(c, s);
  }, 240_000);

  it('the reverse: a laptop link ../elsewhere replaced by a real folder with a file moved in; the server keeps it inside its root', async () => {
    const { c, s, link } = await setup();
    writeFileSync(join(c.local, 'x.txt'), 'laptop x\n');
    symlinkSync(link, join(c.local, 'ldir'));
    await settled(
      c,
      () => isLink(join(c.remote, 'ldir')) && fileIs(join(c.remote, 'x.txt'), 'laptop x\n'),
      'the link and x.txt reach the server',
    );
    expect(readlinkSync(join(c.remote, 'ldir'))).toBe(link);

    // The user replaces the link by a real folder and moves a file into it.
    unlinkSync(join(c.local, 'ldir'));
    mkdirSync(join(c.local, 'ldir'));
    renameSync(join(c.local, 'x.txt'), join(c.local, 'ldir', 'x.txt'));
    await settled(
      c,
      () => isDir(join(c.remote, 'ldir')) && fileIs(join(c.remote, 'ldir', 'x.txt'), 'laptop x\n'),
      'the folder and the moved file reach the server',
    );
    expect(lstatExists(join(c.remote, 'x.txt'))).toBe(false);
    expect(read(join(c.local, 'ldir', 'x.txt'))).toBe('laptop x\n');
    expect(lstatExists(join(s.dir, 'x.txt'))).toBe(false);
    expectSentinelSafe(c, s);
  }, 240_000);
});
