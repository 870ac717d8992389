// rsyncPush against real rsync: to a local-path remote and over the harness sshd
// (same machine, so the remote directory is inspected directly).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeTempDir, startSshd } from '../harness/sshd.js';
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
import { rsyncPush, type PushResult, type TransferredItem } from '../../electron/engine/remote/rsync.js';
import { closeMaster } from '../../electron/engine/remote/ssh.js';
import type { RemoteSpec, SshOptions } from '../../electron/engine/types.js';

const RAND = randomBytes(6).toString('hex');
const PWNED = [1, 2, 3, 4].map((i) => `/tmp/lipsync-pwned-${RAND}-${i}`);
const OLD = new Date('2020-01-02T03:04:05Z');

function expectOk(r: PushResult): void {
  if (!r.ok) throw new Error(`push failed: ${r.error?.kind}: ${r.error?.message}\n${r.error?.detail ?? ''}`);
  expect(r.error).toBeUndefined();
}

describe.each(REMOTE_KINDS)('rsyncPush to a %s remote', (kind) => {
  const fx = useRemote(kind, {
    tempPrefix: 'lipsync-push',
    afterCleanup: () => {
      for (const p of PWNED) expect(existsSync(p), `${p} must not exist`).toBe(false);
    },
  });
  const { ssh, spec } = fx;

  /** A fresh local dir and an existing, empty remote dir. */
  async function pair(remoteName = 'remote'): Promise<{ local: string; dst: string; remote: RemoteSpec }> {
    const n = fx.next();
    const local = join(fx.base, `local-${n}`);
    const dst = join(fx.base, `r${n}`, remoteName);
    await mkdir(local, { recursive: true });
    await mkdir(dst, { recursive: true });
    return { local, dst, remote: spec(dst) };
  }

  const push = (
    local: string,
    remote: RemoteSpec,
    paths: string[] | AsyncIterable<string>,
    extra: Partial<Parameters<typeof rsyncPush>[0]> = {},
  ) => rsyncPush({ localRoot: local, remote, ssh, paths, trashDir: '.lipsync/trash/T1', ...extra });

  it('uploads new, nested and modified files; the replaced version goes to the trash', async () => {
    const { local, dst, remote } = await pair();
    await put(local, 'a.txt', 'new A');
    await put(local, 'nested/deep/er/f.txt', 'deep file');
    await put(local, 'mod.txt', 'version 2, longer');
    await put(dst, 'mod.txt', 'version 1', OLD);
    await put(dst, 'untouched.txt', 'stays', OLD);

    const files: TransferredItem[] = [];
    const r = await push(local, remote, ['a.txt', 'nested/deep/er/f.txt', 'mod.txt'], { onFile: (f) => files.push(f) });
    expectOk(r);
    expect(read(dst, 'a.txt')).toBe('new A');
    expect(read(dst, 'nested/deep/er/f.txt')).toBe('deep file');
    expect(read(dst, 'mod.txt')).toBe('version 2, longer');
    expect(read(dst, 'untouched.txt')).toBe('stays');
    expect(read(dst, '.lipsync/trash/T1/mod.txt')).toBe('version 1');
    expect(existsSync(join(dst, '.lipsync/trash/T1/a.txt'))).toBe(false);
    // mtimes and permissions are kept.
    expect(Math.floor(statSync(join(dst, 'mod.txt')).mtimeMs / 1000)).toBe(
      Math.floor(statSync(join(local, 'mod.txt')).mtimeMs / 1000),
    );
    expect(statSync(join(dst, 'a.txt')).mode & 0o777).toBe(statSync(join(local, 'a.txt')).mode & 0o777);

    const paths = r.items.map((i) => i.path).sort();
    expect(paths).toEqual(['a.txt', 'mod.txt', 'nested/deep/er/f.txt']);
    expect(r.itemCount).toBe(3);
    expect(files).toEqual(r.items);
    expect(r.items.find((i) => i.path === 'a.txt')).toMatchObject({ size: 5, deleted: false });
    expect(r.literalBytes).toBeGreaterThan(0);
    expect(r.warnings).toEqual([]);
  });

  it('deletes files and non-empty directories missing locally, into the trash', async () => {
    const { local, dst, remote } = await pair();
    await put(dst, 'gone.txt', 'old gone');
    await put(dst, 'gonedir/sub/f', 'inner');
    await put(dst, 'gonedir/g', 'g');
    await symlink('sub', join(dst, 'gonedir/lnk'));
    await put(dst, 'keep.txt', 'keep');

    const r = await push(local, remote, ['gone.txt', 'gonedir', 'never-existed']);
    expectOk(r);
    expect(tree(dst)).toEqual(['keep.txt']);
    expect(read(dst, '.lipsync/trash/T1/gone.txt')).toBe('old gone');
    expect(read(dst, '.lipsync/trash/T1/gonedir/sub/f')).toBe('inner');
    expect(read(dst, '.lipsync/trash/T1/gonedir/g')).toBe('g');
    expect(readlinkSync(join(dst, '.lipsync/trash/T1/gonedir/lnk'))).toBe('sub');
    const deleted = r.items.filter((i) => i.deleted).map((i) => i.path);
    expect(deleted).toEqual(expect.arrayContaining(['gone.txt', 'gonedir', 'gonedir/sub/f']));
  });

  it('deletes a path whose local parents are gone too, without warnings', async () => {
    const { local, dst, remote } = await pair();
    await put(dst, 'a/b/c', 'c');
    await put(dst, 'a/b/keep', 'keep');
    const r = await push(local, remote, ['a/b/c', 'x/y/z']);
    expectOk(r);
    expect(tree(dst)).toEqual(['a/', 'a/b/', 'a/b/keep']);
    expect(read(dst, '.lipsync/trash/T1/a/b/c')).toBe('c');
    expect(r.warnings).toEqual([]);
  });

  it('replaces a file by a directory and a directory by a file', async () => {
    const { local, dst, remote } = await pair();
    await put(dst, 'f2d', 'was a file');
    await put(local, 'f2d/z/q', 'now in a dir');
    await put(dst, 'd2f/x/y', 'was in a dir');
    await put(local, 'd2f', 'now a file');

    const r = await push(local, remote, ['f2d', 'f2d/z', 'f2d/z/q', 'd2f']);
    expectOk(r);
    expect(read(dst, 'f2d/z/q')).toBe('now in a dir');
    expect(read(dst, 'd2f')).toBe('now a file');
    expect(read(dst, '.lipsync/trash/T1/f2d')).toBe('was a file');
    expect(read(dst, '.lipsync/trash/T1/d2f/x/y')).toBe('was in a dir');
  });

  it('creates listed directories without recursing, and sends symlinks as symlinks', async () => {
    const { local, dst, remote } = await pair();
    await put(local, 'emptydir/.keep-not-listed', 'x');
    await symlink('target/elsewhere', join(local, 'link'));
    const r = await push(local, remote, ['emptydir', 'link']);
    expectOk(r);
    expect(tree(dst)).toEqual(['emptydir/', 'link']);
    expect(readlinkSync(join(dst, 'link'))).toBe('target/elsewhere');
  });

  it('strange names arrive byte-exact, in a strange root, and nothing is executed', async () => {
    const { local, dst, remote } = await pair(strangeRootName(PWNED));
    const names = strangeNames(PWNED);
    for (const name of names) await put(local, name, `content of ${name}`, OLD);
    const r = await push(local, remote, names);
    expectOk(r);
    for (const name of names) expect(read(dst, name), JSON.stringify(name)).toBe(`content of ${name}`);
    // Both Unicode forms exist as two files, byte-exact.
    expectBothUnicodeForms(dst);
    expect(transferredPaths(r.items)).toEqual([...names].sort());

    // Replace each (old versions go to the trash), then delete each.
    for (const name of names) await put(local, name, `v2 of ${name}`);
    const r2 = await push(local, remote, names, { trashDir: '.lipsync/trash/T2' });
    expectOk(r2);
    for (const name of names) {
      expect(read(dst, name)).toBe(`v2 of ${name}`);
      expect(read(dst, `.lipsync/trash/T2/${name}`)).toBe(`content of ${name}`);
    }
    for (const name of names) await rm(join(local, name));
    const r3 = await push(local, remote, names, { trashDir: '.lipsync/trash/T3' });
    expectOk(r3);
    for (const name of names) {
      expect(existsSync(join(dst, name))).toBe(false);
      expect(read(dst, `.lipsync/trash/T3/${name}`)).toBe(`v2 of ${name}`);
    }
    expect(r3.items.filter((i) => i.deleted).map((i) => i.path)).toEqual(expect.arrayContaining(names));
    for (const p of PWNED) expect(existsSync(p), p).toBe(false);
  });

  it('sends no file data when re-pushing unchanged files', async () => {
    const { local, remote } = await pair();
    await put(local, 'big.bin', randomBytes(300_000));
    await put(local, 'small.txt', 'small');
    const r1 = await push(local, remote, ['big.bin', 'small.txt']);
    expectOk(r1);
    expect(r1.literalBytes).toBeGreaterThanOrEqual(300_000);
    const r2 = await push(local, remote, ['big.bin', 'small.txt']);
    expectOk(r2);
    expect(r2.literalBytes).toBe(0);
    expect(r2.itemCount).toBe(0);
  });

  it('leaves no partial or temp files in the destination, and reports progress', async () => {
    const { local, dst, remote } = await pair();
    await put(local, 'one.bin', randomBytes(2_000_000));
    await put(local, 'dir/two.bin', randomBytes(500_000));
    const progress: { bytes: number; percent: number | null; filesDone: number }[] = [];
    const r = await push(local, remote, ['one.bin', 'dir/two.bin'], { onProgress: (p) => progress.push(p) });
    expectOk(r);
    expect(tree(dst)).toEqual(['dir/', 'dir/two.bin', 'one.bin']);
    expect(readdirSync(join(dst, '.lipsync')).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(readdirSync(join(dst, '.lipsync/partial'))).toEqual([]);
    expect(progress.length).toBeGreaterThan(0);
    const last = progress[progress.length - 1];
    expect(last?.bytes).toBe(2_500_000);
    expect(last?.percent).toBe(100);
    expect(last?.filesDone).toBe(2);
  });

  it('is cancelled by an abort, leaving nothing half-written in the tree', async () => {
    const { local, dst, remote } = await pair();
    await put(local, 'huge.bin', randomBytes(8_000_000));
    const ac = new AbortController();
    let sawProgress = false;
    const r = await push(local, remote, ['huge.bin'], {
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
    expect(tree(dst)).toEqual([]);
  });

  it('streams a long path list from an async iterable', async () => {
    const { local, dst, remote } = await pair();
    const count = 1500;
    for (let i = 0; i < count; i++) await put(local, `many/d${i % 10}/f${i}.txt`, `file ${i}`);
    async function* paths() {
      for (let i = 0; i < count; i++) yield `many/d${i % 10}/f${i}.txt`;
    }
    let seen = 0;
    const r = await push(local, remote, paths(), { onFile: () => seen++ });
    expectOk(r);
    expect(r.itemCount).toBe(count);
    expect(seen).toBe(count);
    expect(read(dst, 'many/d7/f1497.txt')).toBe('file 1497');
  });

  it('fails (and stops rsync) when the path producer throws', async () => {
    const { local, remote } = await pair();
    await put(local, 'a', 'a');
    async function* paths() {
      yield 'a';
      throw new Error('database went away');
    }
    const r = await push(local, remote, paths());
    expect(r.ok).toBe(false);
    expect(r.error?.kind).toBe('unknown');
    expect(r.error?.message).toContain('database went away');
  });

  it('never touches .lipsync: such paths are skipped with a warning', async () => {
    const { local, dst, remote } = await pair();
    await put(dst, '.lipsync/trash/OLD/keep', 'old trash');
    await put(local, 'ok.txt', 'ok');
    await put(local, '.lipsync/evil', 'no');
    const r = await push(local, remote, ['.lipsync', '.lipsync/trash', '.lipsync/evil', 'ok.txt', '../escape', '/abs']);
    expectOk(r);
    expect(read(dst, '.lipsync/trash/OLD/keep')).toBe('old trash');
    expect(existsSync(join(dst, '.lipsync/evil'))).toBe(false);
    expect(read(dst, 'ok.txt')).toBe('ok');
    expect(r.warnings.map((w) => w.files)).toEqual([
      ['.lipsync', '.lipsync/trash', '.lipsync/evil', '../escape', '/abs'],
    ]);
  });

  it('fails with remote-missing, without creating a missing root', async () => {
    const { local, dst } = await pair();
    const missing = join(dst, 'not', 'there');
    const remote = spec(missing);
    await put(local, 'a', 'a');
    const r = await push(local, remote, ['a']);
    expect(r.ok).toBe(false);
    expect(r.error?.kind).toBe('remote-missing');
    expect(existsSync(missing)).toBe(false);
  });
});

describe('rsyncPush over ssh: failures', () => {
  let base: string;
  beforeAll(async () => {
    base = await makeTempDir('lipsync-push-fail');
  });
  afterAll(async () => {
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('fails with rsync-missing-remote when the server has no rsync', async () => {
    const server = await startSshd({ noRsync: true });
    const ssh: SshOptions = { controlDir: join(base, 'ctl-norsync'), configFile: server.sshConfigFile };
    try {
      const local = join(base, 'l1');
      const dst = join(base, 'd1');
      await put(local, 'a.txt', 'a');
      await mkdir(dst, { recursive: true });
      const r = await rsyncPush({
        localRoot: local,
        remote: { kind: 'ssh', host: 'lipsync-test', path: dst },
        ssh,
        paths: ['a.txt'],
        trashDir: '.lipsync/trash/T',
      });
      expect(r.ok).toBe(false);
      expect(r.error?.kind).toBe('rsync-missing-remote');
      expect(r.error?.fix).toMatch(/apt install rsync/);
    } finally {
      await closeMaster({ host: 'lipsync-test' }, ssh);
      await server.stop();
    }
  });

  it('fails with auth-failed for a key the server does not accept', async () => {
    const server = await startSshd();
    try {
      const cfg = join(base, 'wrong-key-config');
      await writeFile(
        cfg,
        `Host lipsync-test\n  HostName 127.0.0.1\n  Port ${server.port}\n  User ${server.user}\n  UserKnownHostsFile ${server.knownHostsFile}\n  GlobalKnownHostsFile /dev/null\n`,
      );
      const ssh: SshOptions = {
        controlDir: join(base, 'ctl-wrong'),
        configFile: cfg,
        identityFile: server.wrongIdentityFile,
      };
      const local = join(base, 'l2');
      await put(local, 'a.txt', 'a');
      const r = await rsyncPush({
        localRoot: local,
        remote: { kind: 'ssh', host: 'lipsync-test', path: base },
        ssh,
        paths: ['a.txt'],
        trashDir: '.lipsync/trash/T',
      });
      expect(r.ok).toBe(false);
      expect(r.error?.kind).toBe('auth-failed');
      expect(r.error?.fix).toContain(server.wrongIdentityFile);
    } finally {
      await server.stop();
    }
  });
});
