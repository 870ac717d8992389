/**
 * Issue 16 §3: versions and restore. Every replaced or deleted version is in a trash
 * (rule S4); `lipsync versions` lists both sides' trash and `lipsync restore` brings one
 * back (the current version goes to the trash first). Real CLI, rsync and sshd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { cli, requireBuild } from '../support/cli.js';
import { makeClient, makeServerDir, syncOk, trashContents, type Client } from '../support/twoway.js';

let server: SshServer;

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  await server?.stop();
});

interface V {
  id: string;
  pair: string;
  path: string;
  side: 'local' | 'remote';
  trashedAt: number;
  size: number;
  origin: string;
}

async function versions(c: Client, args: string[]): Promise<V[]> {
  const r = await cli(c.e, ['versions', ...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as V[];
}

describe('versions and restore', { timeout: 120_000 }, () => {
  it('lists versions from both trashes and restores one, undoably, here and on the server', async () => {
    const remote = makeServerDir();
    const c = await makeClient(server, remote, 'a');
    writeFileSync(join(c.local, 'report.txt'), 'v1 from the laptop');
    await syncOk(c);
    // Changed on the server: the laptop's copy of v1 goes to the laptop's trash on the pull.
    writeFileSync(join(remote, 'report.txt'), 'v2 from the server, longer');
    await syncOk(c);
    // Changed on the laptop: the server's v2 goes to the server's trash on the push.
    writeFileSync(join(c.local, 'report.txt'), 'v3 laptop');
    await syncOk(c);
    // Deleted on the laptop: v3 goes to the server's trash.
    rmSync(join(c.local, 'notes.md'), { force: true });
    writeFileSync(join(c.local, 'notes.md'), 'notes');
    await syncOk(c);
    rmSync(join(c.local, 'notes.md'));
    await syncOk(c);
    expect(existsSync(join(remote, 'notes.md'))).toBe(false);

    const all = await versions(c, [join(c.local, 'report.txt')]);
    const bySide = all.map((v) => `${v.side}:${v.size}`).sort();
    expect(bySide).toEqual(['local:18', 'remote:26']);
    expect(all.every((v) => v.path === 'report.txt' && v.pair === 'docs')).toBe(true);
    expect(all[0]!.trashedAt).toBeGreaterThanOrEqual(all[1]!.trashedAt);
    // A deleted file is listed too (searchable by part of its name).
    const deleted = await versions(c, ['--pair', 'docs', '--search', 'NOTES']);
    expect(deleted.map((v) => [v.path, v.side])).toEqual([['notes.md', 'remote']]);

    // Restore the server's v2 (from the server's trash) to its place.
    const v2 = all.find((v) => v.side === 'remote')!;
    const r = await cli(c.e, ['restore', join(c.local, 'report.txt'), '--version', v2.id]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Restored report\.txt in docs \(the version it replaced is in \.lipsync\/trash\//);
    expect(readFileSync(join(c.local, 'report.txt'), 'utf8')).toBe('v2 from the server, longer');
    expect(readFileSync(join(remote, 'report.txt'), 'utf8')).toBe('v2 from the server, longer');
    // Undoable: v3 (what it replaced) is in the laptop's trash now, and listed.
    expect(trashContents(c.local, 'report.txt')).toContain('v3 laptop');
    expect((await versions(c, [join(c.local, 'report.txt')])).some((v) => v.side === 'local' && v.size === 9)).toBe(
      true,
    );

    // The newest version of a deleted file, next to nothing: back on both sides.
    const back = await cli(c.e, ['restore', join(c.local, 'notes.md')]);
    expect(back.code).toBe(0);
    expect(readFileSync(join(c.local, 'notes.md'), 'utf8')).toBe('notes');
    expect(readFileSync(join(remote, 'notes.md'), 'utf8')).toBe('notes');

    // --to: next to the current file; the current one stays.
    const v1 = all.find((v) => v.side === 'local')!;
    const to = await cli(c.e, [
      'restore',
      join(c.local, 'report.txt'),
      '--version',
      v1.id,
      '--to',
      join(c.local, 'report (v1).txt'),
    ]);
    expect(to.code).toBe(0);
    expect(readFileSync(join(c.local, 'report (v1).txt'), 'utf8')).toBe('v1 from the laptop');
    expect(readFileSync(join(remote, 'report (v1).txt'), 'utf8')).toBe('v1 from the laptop');
    expect(readFileSync(join(c.local, 'report.txt'), 'utf8')).toBe('v2 from the server, longer');
  });

  it('refuses what it cannot do with a clear message, and changes nothing', async () => {
    const remote = makeServerDir();
    const c = await makeClient(server, remote, 'b');
    writeFileSync(join(c.local, 'a.txt'), 'a');
    await syncOk(c);
    const none = await cli(c.e, ['restore', join(c.local, 'a.txt')]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/No version of .*a\.txt is kept/);
    const outside = await cli(c.e, ['versions', '/etc/passwd']);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/not inside a pair's folder/);
    const bad = await cli(c.e, ['restore', join(c.local, 'a.txt'), '--version', 'local:../../etc/passwd']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/There is no version/);
    const meta = await cli(c.e, [
      'restore',
      join(c.local, 'a.txt'),
      '--version',
      'local:2026-01-01/000000000/a.txt',
      '--to',
      join(c.local, '.lipsync/x'),
    ]);
    expect(meta.code).not.toBe(0);
    expect(meta.stderr).toMatch(/inside \.lipsync/);
    expect(readFileSync(join(c.local, 'a.txt'), 'utf8')).toBe('a');
  });
});
