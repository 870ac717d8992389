/**
 * Two-way rules for things that are not plain files (docs/sync-semantics.md):
 * symlinks stay links, the executable bit travels, empty directories sync,
 * Unicode normalization variants stay distinct, case-only renames. One client,
 * with changes made directly in the server's folder; `lipsync sync` one-shot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { cli, makeCliEnv, requireBuild, treeSnapshot, type CliEnv } from '../support/cli.js';

let server: SshServer;

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  await server?.stop();
});

async function pair(): Promise<{ e: CliEnv; local: string; remote: string; sync: () => Promise<void> }> {
  const e = makeCliEnv({ sshConfigFile: server.sshConfigFile });
  const local = join(e.dir, 'local');
  const remote = join(e.dir, 'server');
  mkdirSync(local);
  mkdirSync(remote);
  const r = await cli(e, ['add', local, `${server.alias}:${remote}`, '--id', 'docs']);
  expect(r.code, r.stderr).toBe(0);
  const sync = async () => {
    const s = await cli(e, ['sync']);
    expect(s.code, s.stdout + s.stderr).toBe(0);
  };
  return { e, local, remote, sync };
}

describe('two-way: links, permissions, empty directories, names', () => {
  it('syncs symlinks as links, never following them, both ways', async () => {
    const { local, remote, sync } = await pair();
    symlinkSync('/etc/hostname', join(local, 'outside-link'));
    symlinkSync('sub/target.txt', join(local, 'inside-link'));
    mkdirSync(join(local, 'sub'));
    writeFileSync(join(local, 'sub', 'target.txt'), 'target');
    await sync();
    expect(lstatSync(join(remote, 'outside-link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(remote, 'outside-link'))).toBe('/etc/hostname');
    expect(readlinkSync(join(remote, 'inside-link'))).toBe('sub/target.txt');

    symlinkSync('../nowhere', join(remote, 'server-link'));
    await sync();
    expect(lstatSync(join(local, 'server-link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(local, 'server-link'))).toBe('../nowhere');
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
  });

  it('carries the executable bit both ways', async () => {
    const { local, remote, sync } = await pair();
    writeFileSync(join(local, 'script.sh'), '#!/bin/sh\necho hi\n');
    writeFileSync(join(local, 'tool'), 'binary');
    await sync();
    expect(statSync(join(remote, 'script.sh')).mode & 0o111).toBe(0);
    chmodSync(join(local, 'script.sh'), 0o755);
    await sync();
    expect(statSync(join(remote, 'script.sh')).mode & 0o100).toBe(0o100);
    chmodSync(join(remote, 'tool'), 0o755);
    await sync();
    expect(statSync(join(local, 'tool')).mode & 0o100).toBe(0o100);
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
  });

  it('syncs empty directories both ways, and their removal', async () => {
    const { local, remote, sync } = await pair();
    mkdirSync(join(local, 'empty-here', 'nested'), { recursive: true });
    mkdirSync(join(remote, 'empty-there'));
    await sync();
    expect(statSync(join(remote, 'empty-here', 'nested')).isDirectory()).toBe(true);
    expect(statSync(join(local, 'empty-there')).isDirectory()).toBe(true);
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
    // Removal travels too.
    rmSync(join(local, 'empty-here'), { recursive: true });
    await sync();
    expect(existsSync(join(remote, 'empty-here'))).toBe(false);
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
  });

  it('keeps names that differ only by Unicode normalization as two files', async () => {
    const { local, remote, sync } = await pair();
    const nfc = 'caf\u00e9.txt';
    const nfd = 'cafe\u0301.txt';
    writeFileSync(join(remote, nfc), 'composed');
    writeFileSync(join(local, nfd), 'decomposed');
    await sync();
    expect(readFileSync(join(local, nfc), 'utf8')).toBe('composed');
    expect(readFileSync(join(remote, nfd), 'utf8')).toBe('decomposed');
    expect(
      readdirSync(local)
        .filter((n) => n.startsWith('caf'))
        .sort(),
    ).toEqual([nfc, nfd].sort());
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
  });

  it('applies a case-only rename on this case-sensitive filesystem as a move', async () => {
    const { local, remote, sync } = await pair();
    writeFileSync(join(local, 'readme.txt'), 'hello');
    await sync();
    renameSync(join(local, 'readme.txt'), join(local, 'README.txt'));
    await sync();
    expect(readdirSync(remote).filter((n) => n.toLowerCase() === 'readme.txt')).toEqual(['README.txt']);
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
  });

  it('pulls a change made on the server and keeps the replaced local version in the local trash', async () => {
    const { local, remote, sync } = await pair();
    writeFileSync(join(local, 'doc.txt'), 'version 1');
    await sync();
    writeFileSync(join(remote, 'doc.txt'), 'version 2 from the server');
    await sync();
    expect(readFileSync(join(local, 'doc.txt'), 'utf8')).toBe('version 2 from the server');
    const trash = join(local, '.lipsync', 'trash');
    const found: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (n === 'doc.txt') found.push(readFileSync(p, 'utf8'));
      }
    };
    walk(trash);
    expect(found).toEqual(['version 1']);
  });

  it('with a local-path remote (a mounted disk), logs what it sent and received', async () => {
    const e = makeCliEnv();
    const local = join(e.dir, 'local');
    const disk = join(e.dir, 'disk');
    mkdirSync(local);
    mkdirSync(disk);
    expect((await cli(e, ['add', local, disk, '--id', 'disk'])).code).toBe(0);
    writeFileSync(join(local, 'up.txt'), 'up');
    writeFileSync(join(disk, 'down.txt'), 'down');
    const r = await cli(e, ['sync']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 file sent .*1 received/);
    const log = JSON.parse((await cli(e, ['log', '--json'])).stdout) as { event: string; paths?: string[] }[];
    expect(log.filter((x) => x.event === 'push').flatMap((x) => x.paths)).toEqual(['up.txt']);
    expect(log.filter((x) => x.event === 'pull').flatMap((x) => x.paths)).toEqual(['down.txt']);
    expect(treeSnapshot(disk)).toEqual(treeSnapshot(local));
  });

  it('sends an edit of the same size made within the same second (rsync would skip it by size and time)', async () => {
    const { local, remote, sync } = await pair();
    const f = join(local, 'same-size.txt');
    writeFileSync(f, 'version A');
    utimesSync(f, 1_700_000_000.1, 1_700_000_000.1);
    await sync();
    expect(readFileSync(join(remote, 'same-size.txt'), 'utf8')).toBe('version A');
    writeFileSync(f, 'version B');
    utimesSync(f, 1_700_000_000.6, 1_700_000_000.6);
    await sync();
    expect(readFileSync(join(remote, 'same-size.txt'), 'utf8')).toBe('version B');
    // And the other way: an edit on the server within the same second.
    const g = join(remote, 'same-size.txt');
    writeFileSync(g, 'version C');
    utimesSync(g, 1_700_000_000.9, 1_700_000_000.9);
    await sync();
    expect(readFileSync(f, 'utf8')).toBe('version C');
  });
});
