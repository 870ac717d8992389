/**
 * New folders are sent whole (docs/sync-semantics.md, "New folders"): one recursive
 * rsync into the server's .lipsync/incoming, then one rename into place under the
 * lock, and the base recorded from what arrived. Real sshd, rsync and CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { cli, readLogRecords, requireBuild, treeSnapshot } from '../support/cli.js';
import {
  conflictCopyRe,
  describeResult,
  makeClient,
  makeServerDir,
  patchConfig,
  syncOk,
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

/** A client whose pair `docs` is added with these exclude patterns. */
async function clientWithExcludes(remote: string, name: string, excludes: string[]): Promise<Client> {
  const c = await makeClient(server, remote, name, { add: false });
  const args = [
    'add',
    c.local,
    `${server.alias}:${remote}`,
    '--id',
    c.pair,
    ...excludes.flatMap((e) => ['--exclude', e]),
  ];
  const r = await cli(c.e, args);
  if (r.code !== 0) throw new Error(describeResult(c, args, r));
  patchConfig(c.e, { deviceName: c.device, sshConfigFile: server.sshConfigFile, debounceMs: 50 });
  return c;
}

/** The activity log's messages of `event` records since `since`. */
function messages(c: Client, event: string, since = 0): string[] {
  return readLogRecords(c.e)
    .filter((r) => r.t >= since && r.event === event)
    .map((r) => String((r as { msg?: unknown }).msg));
}

const incoming = (remote: string) => {
  const d = join(remote, '.lipsync', 'incoming');
  return existsSync(d) ? readdirSync(d) : [];
};

/** A new folder tree: files at three depths, an empty folder, a symlink, an executable, excluded names. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'photos/2026/june'), { recursive: true });
  mkdirSync(join(root, 'photos/empty'));
  mkdirSync(join(root, 'photos/build/deep'), { recursive: true });
  for (let i = 0; i < 300; i++) writeFileSync(join(root, `photos/2026/june/img${i}.jpg`), `picture ${i}\n`);
  writeFileSync(join(root, 'photos/readme.txt'), 'top\n');
  writeFileSync(join(root, 'photos/2026/notes.txt'), 'notes\n');
  writeFileSync(join(root, 'photos/run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'photos/run.sh'), 0o755);
  symlinkSync('readme.txt', join(root, 'photos/link'));
  writeFileSync(join(root, 'photos/.notes.txt.swp'), 'vim swap\n'); // built-in exclude
  writeFileSync(join(root, 'photos/build/deep/out.o'), 'object\n'); // user exclude build/
  writeFileSync(join(root, 'photos/2026/june/skip.tmp'), 'temp\n'); // user exclude *.tmp
}

describe('a new folder is sent whole', () => {
  it('arrives complete, without what is excluded, recorded so the next sync sends nothing, and moves as a folder', async () => {
    const remote = makeServerDir();
    const a = await clientWithExcludes(remote, 'a', ['build/', '*.tmp']);
    writeFileSync(join(a.local, 'old.txt'), 'old\n');
    await syncOk(a, 'first sync');
    const since = Date.now();
    makeTree(a.local);
    await syncOk(a, 'sync of the new folder');

    const want = treeSnapshot(a.local);
    for (const k of [...want.keys()]) {
      if (k.endsWith('.swp') || k === 'photos/build' || k.startsWith('photos/build/') || k.endsWith('.tmp'))
        want.delete(k);
    }
    expect(treeSnapshot(remote)).toEqual(want);
    expect(existsSync(join(remote, 'photos/build'))).toBe(false);
    expect(lstatSync(join(remote, 'photos/run.sh')).mode & 0o111).toBe(0o111);
    expect(lstatSync(join(remote, 'photos/link')).isSymbolicLink()).toBe(true);
    // It went as a folder push, and left nothing in the staging area.
    const pushes = messages(a, 'push', since);
    expect(
      pushes.some((m) => /in 1 new folder/.test(m)),
      pushes.join('\n'),
    ).toBe(true);
    expect(incoming(remote)).toEqual([]);

    // The base holds what arrived: another sync sends nothing.
    const since2 = Date.now();
    await syncOk(a, 'no-op sync');
    expect(messages(a, 'push', since2)).toEqual([]);

    // The folder's inode was recorded: a rename here is a rename on the server.
    const inode = lstatSync(join(remote, 'photos')).ino;
    renameSync(join(a.local, 'photos'), join(a.local, 'pictures'));
    const since3 = Date.now();
    await syncOk(a, 'sync of the rename');
    expect(messages(a, 'rename', since3).join('\n')).toMatch(/photos → pictures/);
    expect(messages(a, 'push', since3)).toEqual([]);
    expect(lstatSync(join(remote, 'pictures')).ino).toBe(inode);
    expect(existsSync(join(remote, 'photos'))).toBe(false);
  });

  it('a folder that is on the server already is merged path by path (conflicts, union), not replaced', async () => {
    const remote = makeServerDir();
    const a = await clientWithExcludes(remote, 'a', []);
    await syncOk(a, 'first sync');
    mkdirSync(join(a.local, 'shared'));
    writeFileSync(join(a.local, 'shared/same.txt'), 'local version\n');
    writeFileSync(join(a.local, 'shared/mine.txt'), 'only here\n');
    mkdirSync(join(remote, 'shared'));
    writeFileSync(join(remote, 'shared/same.txt'), 'server version!\n');
    writeFileSync(join(remote, 'shared/theirs.txt'), 'only there\n');
    await syncOk(a, 'merge');

    expect(readFileSync(join(a.local, 'shared/same.txt'), 'utf8')).toBe('server version!\n');
    expect(readFileSync(join(a.local, 'shared/theirs.txt'), 'utf8')).toBe('only there\n');
    expect(readFileSync(join(remote, 'shared/mine.txt'), 'utf8')).toBe('only here\n');
    const copies = readdirSync(join(a.local, 'shared')).filter((n) => conflictCopyRe('same', '.txt', a.device).test(n));
    expect(copies).toHaveLength(1);
    expect(readFileSync(join(a.local, 'shared', copies[0]!), 'utf8')).toBe('local version\n');
    expect(readFileSync(join(remote, 'shared', copies[0]!), 'utf8')).toBe('local version\n');
    expect(incoming(remote)).toEqual([]);
  });

  it('with excludes rsync cannot express (a negation), new folders still sync path by path', async () => {
    const remote = makeServerDir();
    const a = await clientWithExcludes(remote, 'a', ['*.log', '!keep.log']);
    await syncOk(a, 'first sync');
    const since = Date.now();
    mkdirSync(join(a.local, 'logs/old'), { recursive: true });
    writeFileSync(join(a.local, 'logs/a.log'), 'a\n');
    writeFileSync(join(a.local, 'logs/keep.log'), 'keep\n');
    writeFileSync(join(a.local, 'logs/old/b.txt'), 'b\n');
    await syncOk(a, 'sync');
    expect(treeSnapshot(remote)).toEqual(
      new Map([
        ['logs', 'dir'],
        ['logs/keep.log', expect.any(String) as unknown as string],
        ['logs/old', 'dir'],
        ['logs/old/b.txt', expect.any(String) as unknown as string],
      ]),
    );
    expect(readFileSync(join(remote, 'logs/keep.log'), 'utf8')).toBe('keep\n');
    expect(messages(a, 'push', since).some((m) => /new folder/.test(m))).toBe(false);
  });
});
