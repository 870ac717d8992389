// rsyncPull and rsyncSameContent against real rsync: from a local-path remote
// and over the harness sshd (same machine, so the remote directory is
// prepared and inspected directly).

import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { chmod, mkdir, rm, symlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { REMOTE_KINDS, useRemote } from '../support/remotes.js';
import {
  expectBothUnicodeForms,
  put,
  read,
  strangeNames,
  strangeRootName,
  transferredPaths,
  tree,
} from '../support/trees.js';
import { rsyncPull, type PullResult, type TransferredItem } from '../../electron/engine/remote/rsync.js';
import { rsyncPullArgs } from '../../electron/engine/remote/rsync-args.js';
import { rsyncSameContent } from '../../electron/engine/remote/rsync-compare.js';
import type { RemoteSpec, SshOptions } from '../../electron/engine/types.js';

const RAND = randomBytes(6).toString('hex');
const PWNED = [1, 2, 3, 4].map((i) => `/tmp/lipsync-pwned-pull-${RAND}-${i}`);
const OLD = new Date('2020-01-02T03:04:05Z');
const OLDER = new Date('2019-05-06T07:08:09Z');

function expectOk(r: PullResult): void {
  if (!r.ok) throw new Error(`pull failed: ${r.error?.kind}: ${r.error?.message}\n${r.error?.detail ?? ''}`);
  expect(r.error).toBeUndefined();
}

describe('rsyncPullArgs', () => {
  it('mirrors the push flags with the roles swapped; meta dirs in the local root', () => {
    const ssh: SshOptions = { controlDir: '/tmp/lipsync-args-ctl' };
    const local = rsyncPullArgs({
      localRoot: '/home/u/Sync',
      remote: { kind: 'local', path: '/mnt/backup/sync' },
      ssh,
      trashDir: '.lipsync/trash/2026-11-25/133012345',
      bwLimitKBps: 500,
    });
    expect(local).toEqual(
      expect.arrayContaining([
        '-s',
        '-l',
        '-p',
        '-t',
        '--files-from=-',
        '--from0',
        '--no-implied-dirs',
        '--delete-missing-args',
        '--force',
        '--backup',
        '--backup-dir=.lipsync/trash/2026-11-25/133012345',
        '--partial-dir=/home/u/Sync/.lipsync/partial',
        '--temp-dir=.lipsync',
        '--exclude=/.lipsync/***',
        '--bwlimit=500',
      ]),
    );
    expect(local.slice(-2)).toEqual(['/mnt/backup/sync/', '/home/u/Sync/']);
    const remote = rsyncPullArgs({
      localRoot: '/home/u/Sync',
      remote: { kind: 'ssh', host: 'example.org', path: '/srv/x y' },
      ssh,
      trashDir: '.lipsync/trash/T',
    });
    expect(remote.slice(-2)).toEqual(['example.org:/srv/x y/', '/home/u/Sync/']);
    expect(remote[remote.length - 4]).toBe('-e');
  });
});

describe.each(REMOTE_KINDS)('rsyncPull from a %s remote', (kind) => {
  const fx = useRemote(kind, {
    tempPrefix: 'lipsync-pull',
    afterCleanup: () => {
      for (const p of PWNED) expect(existsSync(p), `${p} must not exist`).toBe(false);
    },
  });
  const { ssh, spec } = fx;

  /** A fresh, empty local dir (named `localName`) and an existing, empty remote dir. */
  async function pair(localName = 'local'): Promise<{ local: string; src: string; remote: RemoteSpec }> {
    const n = fx.next();
    const local = join(fx.base, `l${n}`, localName);
    const src = join(fx.base, `r${n}`, 'remote');
    await mkdir(local, { recursive: true });
    await mkdir(src, { recursive: true });
    return { local, src, remote: spec(src) };
  }

  const pull = (
    local: string,
    remote: RemoteSpec,
    paths: string[] | AsyncIterable<string>,
    extra: Partial<Parameters<typeof rsyncPull>[0]> = {},
  ) => rsyncPull({ localRoot: local, remote, ssh, paths, trashDir: '.lipsync/trash/T1', ...extra });

  it('fetches new, nested and modified files; the replaced local version goes to the local trash', async () => {
    const { local, src, remote } = await pair();
    await put(src, 'a.txt', 'new A');
    await put(src, 'nested/deep/er/f.txt', 'deep file');
    await put(src, 'mod.txt', 'version 2, longer');
    await put(local, 'mod.txt', 'version 1', OLD);
    await put(local, 'untouched.txt', 'stays', OLD);
    await chmod(join(src, 'a.txt'), 0o640);

    const files: TransferredItem[] = [];
    const r = await pull(local, remote, ['a.txt', 'nested/deep/er/f.txt', 'mod.txt'], {
      onFile: (f) => files.push(f),
    });
    expectOk(r);
    expect(read(local, 'a.txt')).toBe('new A');
    expect(read(local, 'nested/deep/er/f.txt')).toBe('deep file');
    expect(read(local, 'mod.txt')).toBe('version 2, longer');
    expect(read(local, 'untouched.txt')).toBe('stays');
    expect(read(local, '.lipsync/trash/T1/mod.txt')).toBe('version 1');
    expect(existsSync(join(local, '.lipsync/trash/T1/a.txt'))).toBe(false);
    // Nothing was written on the remote side.
    expect(existsSync(join(src, '.lipsync'))).toBe(false);
    // mtimes and permissions are kept.
    expect(Math.floor(statSync(join(local, 'mod.txt')).mtimeMs / 1000)).toBe(
      Math.floor(statSync(join(src, 'mod.txt')).mtimeMs / 1000),
    );
    expect(statSync(join(local, 'a.txt')).mode & 0o777).toBe(0o640);

    expect(r.items.map((i) => i.path).sort()).toEqual(['a.txt', 'mod.txt', 'nested/deep/er/f.txt']);
    for (const i of r.items) expect(i.itemize).toMatch(/^>f/);
    expect(r.itemCount).toBe(3);
    expect(files).toEqual(r.items);
    expect(r.items.find((i) => i.path === 'a.txt')).toMatchObject({ size: 5, deleted: false });
    expect(r.literalBytes).toBeGreaterThan(0);
    expect(r.warnings).toEqual([]);
  });

  it('deletes local files and non-empty directories missing remotely, keeping them in the local trash', async () => {
    const { local, src, remote } = await pair();
    await put(local, 'gone.txt', 'old gone');
    await put(local, 'gonedir/sub/f', 'inner');
    await put(local, 'gonedir/g', 'g');
    await symlink('sub', join(local, 'gonedir/lnk'));
    await put(local, 'keep.txt', 'keep');
    await put(src, 'keep.txt', 'keep');

    const r = await pull(local, remote, ['gone.txt', 'gonedir', 'never-existed']);
    expectOk(r);
    expect(tree(local)).toEqual(['keep.txt']);
    expect(read(local, '.lipsync/trash/T1/gone.txt')).toBe('old gone');
    expect(read(local, '.lipsync/trash/T1/gonedir/sub/f')).toBe('inner');
    expect(read(local, '.lipsync/trash/T1/gonedir/g')).toBe('g');
    expect(readlinkSync(join(local, '.lipsync/trash/T1/gonedir/lnk'))).toBe('sub');
    const deleted = r.items.filter((i) => i.deleted).map((i) => i.path);
    expect(deleted).toEqual(expect.arrayContaining(['gone.txt', 'gonedir', 'gonedir/sub/f']));
    expect(r.warnings).toEqual([]);
  });

  it('deletes a path whose remote parents are gone too, without warnings', async () => {
    const { local, remote } = await pair();
    await put(local, 'a/b/c', 'c');
    await put(local, 'a/b/keep', 'keep');
    const r = await pull(local, remote, ['a/b/c', 'x/y/z']);
    expectOk(r);
    expect(tree(local)).toEqual(['a/', 'a/b/', 'a/b/keep']);
    expect(read(local, '.lipsync/trash/T1/a/b/c')).toBe('c');
    expect(r.warnings).toEqual([]);
  });

  it('replaces a file by a directory and a directory by a file', async () => {
    const { local, src, remote } = await pair();
    await put(local, 'f2d', 'was a file');
    await put(src, 'f2d/z/q', 'now in a dir');
    await put(local, 'd2f/x/y', 'was in a dir');
    await put(src, 'd2f', 'now a file');

    const r = await pull(local, remote, ['f2d', 'f2d/z', 'f2d/z/q', 'd2f']);
    expectOk(r);
    expect(read(local, 'f2d/z/q')).toBe('now in a dir');
    expect(read(local, 'd2f')).toBe('now a file');
    expect(read(local, '.lipsync/trash/T1/f2d')).toBe('was a file');
    expect(read(local, '.lipsync/trash/T1/d2f/x/y')).toBe('was in a dir');
  });

  it('creates listed directories without recursing, and fetches symlinks as symlinks', async () => {
    const { local, src, remote } = await pair();
    await put(src, 'emptydir/.keep-not-listed', 'x');
    await symlink('target/elsewhere', join(src, 'link'));
    const r = await pull(local, remote, ['emptydir', 'link']);
    expectOk(r);
    expect(tree(local)).toEqual(['emptydir/', 'link']);
    expect(readlinkSync(join(local, 'link'))).toBe('target/elsewhere');
  });

  it('strange names arrive byte-exact, in a strange local root, and nothing is executed', async () => {
    const { local, src, remote } = await pair(strangeRootName(PWNED));
    const names = strangeNames(PWNED);
    for (const name of names) await put(src, name, `content of ${name}`, OLD);
    const r = await pull(local, remote, names);
    expectOk(r);
    for (const name of names) expect(read(local, name), JSON.stringify(name)).toBe(`content of ${name}`);
    expectBothUnicodeForms(local);
    expect(transferredPaths(r.items)).toEqual([...names].sort());

    // The remote changes each (the local versions go to the local trash), then deletes each.
    for (const name of names) await put(src, name, `v2 of ${name}`);
    const r2 = await pull(local, remote, names, { trashDir: '.lipsync/trash/T2' });
    expectOk(r2);
    for (const name of names) {
      expect(read(local, name)).toBe(`v2 of ${name}`);
      expect(read(local, `.lipsync/trash/T2/${name}`)).toBe(`content of ${name}`);
    }
    for (const name of names) await rm(join(src, name));
    const r3 = await pull(local, remote, names, { trashDir: '.lipsync/trash/T3' });
    expectOk(r3);
    for (const name of names) {
      expect(existsSync(join(local, name))).toBe(false);
      expect(read(local, `.lipsync/trash/T3/${name}`)).toBe(`v2 of ${name}`);
    }
    expect(r3.items.filter((i) => i.deleted).map((i) => i.path)).toEqual(expect.arrayContaining(names));
    for (const p of PWNED) expect(existsSync(p), p).toBe(false);
  });

  it('fetches no file data for unchanged files', async () => {
    const { local, src, remote } = await pair();
    await put(src, 'big.bin', randomBytes(300_000));
    const r1 = await pull(local, remote, ['big.bin']);
    expectOk(r1);
    expect(r1.literalBytes).toBeGreaterThanOrEqual(300_000);
    const r2 = await pull(local, remote, ['big.bin']);
    expectOk(r2);
    expect(r2.literalBytes).toBe(0);
    expect(r2.itemCount).toBe(0);
  });

  it('leaves no partial or temp files in the local tree (only under .lipsync), and reports progress', async () => {
    const { local, src, remote } = await pair();
    await put(src, 'one.bin', randomBytes(2_000_000));
    await put(src, 'dir/two.bin', randomBytes(500_000));
    const progress: { bytes: number; percent: number | null; filesDone: number }[] = [];
    const r = await pull(local, remote, ['one.bin', 'dir/two.bin'], { onProgress: (p) => progress.push(p) });
    expectOk(r);
    expect(tree(local)).toEqual(['dir/', 'dir/two.bin', 'one.bin']);
    // Temp files (.NAME.XXXXXX) live directly in .lipsync while a file is received.
    expect(readdirSync(join(local, '.lipsync')).sort()).toEqual(['partial', 'trash']);
    expect(readdirSync(join(local, '.lipsync/partial'))).toEqual([]);
    expect(progress.length).toBeGreaterThan(0);
    const last = progress[progress.length - 1];
    expect(last?.bytes).toBe(2_500_000);
    expect(last?.percent).toBe(100);
    expect(last?.filesDone).toBe(2);
  });

  it('is cancelled by an abort: nothing half-written is visible, the old local version stays', async () => {
    const { local, src, remote } = await pair();
    const fresh = randomBytes(8_000_000);
    await put(src, 'huge.bin', fresh);
    await put(src, 'new.bin', fresh);
    await put(local, 'huge.bin', 'the old local version', OLD);
    const ac = new AbortController();
    let sawProgress = false;
    const r = await pull(local, remote, ['huge.bin', 'new.bin'], {
      signal: ac.signal,
      bwLimitKBps: 1000,
      onProgress: (p) => {
        if (p.bytes > 0 && !sawProgress) {
          sawProgress = true;
          setTimeout(() => ac.abort(), 300);
        }
      },
    });
    expect(r.ok).toBe(false);
    expect(r.error?.kind).toBe('cancelled');
    expect(tree(local)).toEqual(['huge.bin']);
    expect(read(local, 'huge.bin')).toBe('the old local version');
    // Whatever rsync kept of the interrupted file is under .lipsync only.
    for (const name of readdirSync(local)) expect(['huge.bin', '.lipsync']).toContain(name);
  });

  it('streams a long path list from an async iterable', async () => {
    const { local, src, remote } = await pair();
    const count = 1500;
    for (let i = 0; i < count; i++) await put(src, `many/d${i % 10}/f${i}.txt`, `file ${i}`);
    async function* paths() {
      for (let i = 0; i < count; i++) yield `many/d${i % 10}/f${i}.txt`;
    }
    let seen = 0;
    const r = await pull(local, remote, paths(), { onFile: () => seen++ });
    expectOk(r);
    expect(r.itemCount).toBe(count);
    expect(seen).toBe(count);
    expect(read(local, 'many/d7/f1497.txt')).toBe('file 1497');
  });

  it('never touches .lipsync on either side: such paths are skipped with a warning', async () => {
    const { local, src, remote } = await pair();
    await put(local, '.lipsync/trash/OLD/keep', 'old local trash');
    await put(src, '.lipsync/evil', 'no');
    await put(src, 'ok.txt', 'ok');
    const r = await pull(local, remote, ['.lipsync', '.lipsync/trash', '.lipsync/evil', 'ok.txt', '../escape', '/abs']);
    expectOk(r);
    expect(read(local, '.lipsync/trash/OLD/keep')).toBe('old local trash');
    expect(existsSync(join(local, '.lipsync/evil'))).toBe(false);
    expect(read(local, 'ok.txt')).toBe('ok');
    expect(r.warnings.map((w) => w.files)).toEqual([
      ['.lipsync', '.lipsync/trash', '.lipsync/evil', '../escape', '/abs'],
    ]);
    expect(r.warnings[0]?.message).toMatch(/not fetched/);
  });

  it('fails with remote-missing when the remote root is gone, deleting nothing locally', async () => {
    const { local, src } = await pair();
    const missing = join(src, 'not', 'there');
    const remote = spec(missing);
    await put(local, 'a', 'a');
    await put(local, 'd/b', 'b');
    const r = await pull(local, remote, ['a', 'd', 'd/b']);
    expect(r.ok).toBe(false);
    expect(r.error?.kind).toBe('remote-missing');
    expect(r.error?.message).toContain(missing);
    expect(tree(local)).toEqual(['a', 'd/', 'd/b']);
    expect(existsSync(missing)).toBe(false);
  });

  it('fails with local-missing, without creating a missing local root', async () => {
    const { local, src, remote } = await pair();
    await put(src, 'a', 'a');
    const gone = join(local, 'not', 'there');
    const r = await pull(gone, remote, ['a']);
    expect(r.ok).toBe(false);
    expect(r.error?.kind).toBe('local-missing');
    expect(existsSync(gone)).toBe(false);
  });
});

describe.each(REMOTE_KINDS)('rsyncSameContent with a %s remote', (kind) => {
  const fx = useRemote(kind, {
    tempPrefix: 'lipsync-same',
  });
  const { ssh, spec } = fx;

  async function pair(): Promise<{ local: string; dst: string; remote: RemoteSpec }> {
    const n = fx.next();
    const local = join(fx.base, `l${n}`);
    const dst = join(fx.base, `r${n}`, "remote 'q' $(x)");
    await mkdir(local, { recursive: true });
    await mkdir(dst, { recursive: true });
    return { local, dst, remote: spec(dst) };
  }

  it('tells same content from different content, whatever the mtimes and sizes say', async () => {
    const { local, dst, remote } = await pair();
    // Same content, different mtimes and modes: same.
    await put(local, 'same-content', 'identical bytes', OLD);
    await put(dst, 'same-content', 'identical bytes', OLDER);
    await chmod(join(dst, 'same-content'), 0o600);
    // Different content, same size and same mtime (rsync's quick check would miss it): different.
    await put(local, 'sneaky', 'AAAAAAAA', OLD);
    await put(dst, 'sneaky', 'AAAAAAAB', OLD);
    // Different sizes: different.
    await put(local, 'sizes', 'short', OLD);
    await put(dst, 'sizes', 'longer text', OLD);
    // Large identical files, different mtimes: same.
    const big = randomBytes(1_000_000);
    await put(local, 'dir/big.bin', big, OLD);
    await put(dst, 'dir/big.bin', big);
    // Only on one side: different.
    await put(local, 'only-local', 'x');
    await put(dst, 'only-remote', 'x');
    // Symlinks compare by target.
    await symlink('t1', join(local, 'ln-same'));
    await symlink('t1', join(dst, 'ln-same'));
    await symlink('t1', join(local, 'ln-diff'));
    await symlink('t2', join(dst, 'ln-diff'));
    // A file against a directory: different.
    await put(local, 'file-vs-dir', 'f');
    await put(dst, 'file-vs-dir/inner', 'i');
    // Strange names.
    await put(local, "new\nline $(x) 'q'", 'same', OLD);
    await put(dst, "new\nline $(x) 'q'", 'same', OLDER);
    await put(local, '#hash', 'one');
    await put(dst, '#hash', 'two');

    const same = await rsyncSameContent({
      localRoot: local,
      remote,
      ssh,
      paths: [
        'same-content',
        'sneaky',
        'sizes',
        'dir/big.bin',
        'only-local',
        'only-remote',
        'ln-same',
        'ln-diff',
        'file-vs-dir',
        "new\nline $(x) 'q'",
        '#hash',
        '../escape',
        '.lipsync/x',
      ],
    });
    expect(Object.fromEntries(same)).toEqual({
      'same-content': true,
      sneaky: false,
      sizes: false,
      'dir/big.bin': true,
      'only-local': false,
      'only-remote': false,
      'ln-same': true,
      'ln-diff': false,
      'file-vs-dir': false,
      "new\nline $(x) 'q'": true,
      '#hash': false,
      '../escape': false,
      '.lipsync/x': false,
    });
    // A dry run: nothing changed on either side.
    expect(read(dst, 'sneaky')).toBe('AAAAAAAB');
    expect(Math.floor(statSync(join(dst, 'same-content')).mtimeMs / 1000)).toBe(OLDER.getTime() / 1000);
    expect(existsSync(join(dst, 'only-local'))).toBe(false);
    expect(existsSync(join(dst, 'only-remote'))).toBe(true);
    expect(existsSync(join(dst, '.lipsync'))).toBe(false);
  });

  it('returns an empty map for no paths, and rejects with a LipsyncError when rsync cannot run', async () => {
    const { local, remote } = await pair();
    expect((await rsyncSameContent({ localRoot: local, remote, ssh, paths: [] })).size).toBe(0);
    if (kind === 'ssh') {
      const bad: RemoteSpec = { kind: 'ssh', host: 'lipsync-no-such-host.invalid', path: '/x' };
      await expect(
        rsyncSameContent({ localRoot: local, remote: bad, ssh: { controlDir: ssh.controlDir }, paths: ['a'] }),
      ).rejects.toMatchObject({ name: 'LipsyncError', kind: 'host-unreachable' });
    }
  });
});
