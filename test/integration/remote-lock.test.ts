// The remote lock (mkdir ROOT/.lipsync/lock) and trash purging, against a
// local-path remote and over the harness sshd (same machine: the remote
// directory is prepared and inspected directly).

import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { makeTempDir } from '../harness/sshd.js';
import { REMOTE_KINDS, useRemote } from '../support/remotes.js';
import { LOCK_BREAK_DIR, LOCK_DIR, LOCK_OWNER_FILE } from '../../shared/layout.js';
import { purgeLocalTrash, remoteOps, type RemoteOps } from '../../electron/engine/remote/ops.js';
import { trashCutoff } from '../../electron/engine/remote/meta.js';
import { LipsyncError } from '../../electron/engine/errors.js';
import { run } from '../../electron/engine/proc/run.js';

const RAND = randomBytes(6).toString('hex');
const PWNED = `/tmp/lipsync-pwned-lock-${RAND}`;
const TTL = 60_000;

async function put(root: string, rel: string, content: string): Promise<void> {
  const p = join(root, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
}

/** Sets a path's mtime `ago` into the past the way the brief says: `touch -d '-10 min'`. */
async function age(path: string, ago = '-10 min'): Promise<void> {
  const r = await run('touch', ['-d', ago, '--', path]);
  expect(r.code).toBe(0);
}

describe.each(REMOTE_KINDS)('the remote lock on a %s remote', (kind) => {
  const fx = useRemote(kind, {
    tempPrefix: 'lipsync-lock',
    closeSsh: (_server, o) => remoteOps({ kind: 'ssh', host: 'lipsync-test', path: '/' }, o).close(),
    afterCleanup: () => expect(existsSync(PWNED)).toBe(false),
  });
  const { ssh, spec } = fx;
  async function root(name = "root 'q' $(x)"): Promise<{ dir: string; ops: RemoteOps }> {
    const dir = join(fx.base, `t${fx.next()}`, name);
    await mkdir(dir, { recursive: true });
    return { dir, ops: madeMeta(remoteOps(spec(dir), ssh)) };
  }
  /**
   * Every lock call also makes the meta dirs (RemoteOps.lock, so a push right after
   * needs no script of its own): checked here on each call, then left out of the answer.
   */
  function madeMeta(ops: RemoteOps): RemoteOps {
    const lock = ops.lock.bind(ops);
    return Object.assign(Object.create(ops) as RemoteOps, {
      lock: async (owner: string, ttl: number) => {
        const { metaReady, ...answer } = await lock(owner, ttl);
        expect(metaReady).toBe(true);
        return answer;
      },
    });
  }
  const ownerText = (dir: string) => readFileSync(join(dir, LOCK_OWNER_FILE), 'utf8');

  it('two owners contend: only the first acquires; the second learns who holds it', async () => {
    const { dir, ops } = await root();
    expect(await ops.lock('host-a pid 1 client A', TTL)).toEqual({ acquired: true });
    expect(ownerText(dir)).toBe('host-a pid 1 client A');
    expect(await ops.lock('host-b pid 2 client B', TTL)).toEqual({
      acquired: false,
      holder: 'host-a pid 1 client A',
    });
    // The holder asking again does not get it twice either: the lock is not re-entrant.
    expect((await ops.lock('host-a pid 1 client A', TTL)).acquired).toBe(false);
    expect(ownerText(dir)).toBe('host-a pid 1 client A');
  });

  it('unlock by a non-owner does nothing; by the owner frees the lock for the next', async () => {
    const { dir, ops } = await root();
    expect((await ops.lock('A', TTL)).acquired).toBe(true);
    expect(await ops.unlock('B')).toBe(false);
    expect(await ops.unlock('A-but-longer')).toBe(false);
    expect(ownerText(dir)).toBe('A');
    expect((await ops.lock('B', TTL)).acquired).toBe(false);
    expect(await ops.unlock('A')).toBe(true);
    expect(existsSync(join(dir, LOCK_DIR))).toBe(false);
    expect(await ops.unlock('A')).toBe(false);
    expect((await ops.lock('B', TTL)).acquired).toBe(true);
    expect(ownerText(dir)).toBe('B');
    // Nothing left behind in .lipsync but the lock and the meta dirs it made.
    expect(readdirSync(join(dir, '.lipsync')).sort()).toEqual(['incoming', 'lock', 'partial', 'trash']);
  });

  it('breaks a stale lock (owner file not touched for longer than the TTL)', async () => {
    const { dir, ops } = await root();
    expect((await ops.lock('dead client', TTL)).acquired).toBe(true);
    await age(join(dir, LOCK_OWNER_FILE));
    expect(await ops.lock('new client', TTL)).toEqual({ acquired: true, brokeStale: 'dead client' });
    expect(ownerText(dir)).toBe('new client');
    // The dead holder has lost it: its heartbeat and unlock say so and change nothing.
    expect(await ops.refreshLock('dead client')).toBe(false);
    expect(await ops.unlock('dead client')).toBe(false);
    expect(ownerText(dir)).toBe('new client');
    // No stale leftovers.
    expect(readdirSync(join(dir, '.lipsync')).sort()).toEqual(['incoming', 'lock', 'partial', 'trash']);
  });

  it('does not break a lock younger than the TTL, nor one whose holder refreshes it', async () => {
    const { dir, ops } = await root();
    expect((await ops.lock('A', TTL)).acquired).toBe(true);
    await age(join(dir, LOCK_OWNER_FILE), '-30 sec');
    expect((await ops.lock('B', TTL)).acquired).toBe(false);
    await age(join(dir, LOCK_OWNER_FILE), '-10 min');
    expect(await ops.refreshLock('A')).toBe(true);
    expect(Date.now() - statSync(join(dir, LOCK_OWNER_FILE)).mtimeMs).toBeLessThan(10_000);
    expect(await ops.lock('B', TTL)).toEqual({ acquired: false, holder: 'A' });
    expect(await ops.refreshLock('B')).toBe(false);
    expect(ownerText(dir)).toBe('A');
  });

  it('a lock dir without an owner file is judged by its own mtime', async () => {
    const { dir, ops } = await root();
    await mkdir(join(dir, LOCK_DIR), { recursive: true });
    expect(await ops.lock('B', TTL)).toEqual({ acquired: false, holder: '' });
    await age(join(dir, LOCK_DIR));
    expect(await ops.lock('B', TTL)).toEqual({ acquired: true, brokeStale: '' });
    expect(ownerText(dir)).toBe('B');
  });

  it('a break dir left by a client that died mid-break does not block breaking for ever', async () => {
    const { dir, ops } = await root();
    expect((await ops.lock('dead', TTL)).acquired).toBe(true);
    await age(join(dir, LOCK_OWNER_FILE));
    await mkdir(join(dir, LOCK_BREAK_DIR));
    // A fresh break dir: someone is breaking right now, so we do not.
    expect((await ops.lock('B', TTL)).acquired).toBe(false);
    await age(join(dir, LOCK_BREAK_DIR), '-2 min');
    expect(await ops.lock('B', TTL)).toEqual({ acquired: true, brokeStale: 'dead' });
    expect(existsSync(join(dir, LOCK_BREAK_DIR))).toBe(false);
  });

  it('exactly one of 5 concurrent lock() calls acquires', async () => {
    const { dir, ops } = await root();
    const owners = [1, 2, 3, 4, 5].map((i) => `client ${i}`);
    const results = await Promise.all(owners.map((o) => remoteOps(spec(dir), ssh).lock(o, TTL)));
    const winners = results.filter((r) => r.acquired);
    expect(winners).toHaveLength(1);
    const winner = owners[results.findIndex((r) => r.acquired)];
    expect(ownerText(dir)).toBe(winner);
    for (const r of results) if (!r.acquired) expect(['', winner]).toContain(r.holder);
    expect(await ops.unlock(winner as string)).toBe(true);
  });

  it('exactly one of 5 concurrent breakers of one stale lock acquires', async () => {
    const { dir } = await root();
    const ops = remoteOps(spec(dir), ssh);
    expect((await ops.lock('dead', TTL)).acquired).toBe(true);
    await age(join(dir, LOCK_OWNER_FILE));
    const owners = [1, 2, 3, 4, 5].map((i) => `breaker ${i}`);
    const results = await Promise.all(owners.map((o) => remoteOps(spec(dir), ssh).lock(o, TTL)));
    expect(results.filter((r) => r.acquired)).toHaveLength(1);
    expect(owners).toContain(ownerText(dir));
    expect(readdirSync(join(dir, '.lipsync')).sort()).toEqual(['incoming', 'lock', 'partial', 'trash']);
  });

  it('owner texts with quotes, newlines and $(...) round-trip and execute nothing', async () => {
    const { dir, ops } = await root();
    const owner = `host "h" 'it's' $(touch ${PWNED}) \`touch ${PWNED}\`\nline 2 é\\n`;
    expect((await ops.lock(owner, TTL)).acquired).toBe(true);
    expect(ownerText(dir)).toBe(owner);
    expect(await ops.lock('other', TTL)).toEqual({ acquired: false, holder: owner });
    expect(await ops.refreshLock(owner)).toBe(true);
    expect(await ops.unlock(`${owner}x`)).toBe(false);
    expect(await ops.unlock(owner)).toBe(true);
    expect(existsSync(PWNED)).toBe(false);
  });

  it('rejects an empty owner and a bad TTL; fails with remote-missing on a missing root', async () => {
    const { dir, ops } = await root();
    await expect(ops.lock('', TTL)).rejects.toBeInstanceOf(LipsyncError);
    await expect(ops.lock('A', 0)).rejects.toBeInstanceOf(LipsyncError);
    const missing = remoteOps(spec(join(dir, 'missing')), ssh);
    await expect(missing.lock('A', TTL)).rejects.toMatchObject({ kind: 'remote-missing' });
    expect(existsSync(join(dir, 'missing'))).toBe(false);
    expect(await missing.refreshLock('A')).toBe(false);
    expect(await missing.unlock('A')).toBe(false);
  });

  it('purgeTrash removes only day dirs older than N days, by name', async () => {
    const { dir, ops } = await root();
    const now = new Date('2026-11-25T12:00:00Z');
    for (const d of ['2026-10-01', '2026-10-25', '2026-10-26', '2026-11-25', 'not-a-date', '2026-1-01'])
      await put(dir, `.lipsync/trash/${d}/133012345/file`, d);
    await put(dir, '.lipsync/trash/2020-01-01', 'a file, not a day dir');
    await put(dir, 'user/2020-01-01/keep', 'not in the trash');
    expect(trashCutoff(30, now)).toBe('2026-10-26');
    expect(await ops.purgeTrash(30, now)).toBe(2);
    expect(readdirSync(join(dir, '.lipsync/trash')).sort()).toEqual([
      '2020-01-01',
      '2026-1-01',
      '2026-10-26',
      '2026-11-25',
      'not-a-date',
    ]);
    expect(existsSync(join(dir, 'user/2020-01-01/keep'))).toBe(true);
    expect(await ops.purgeTrash(30, now)).toBe(0);
    expect(await ops.purgeTrash(0, now)).toBe(1);
    expect(readdirSync(join(dir, '.lipsync/trash')).sort()).toEqual([
      '2020-01-01',
      '2026-1-01',
      '2026-11-25',
      'not-a-date',
    ]);
    // Staging folders of folder pushes: one a client left behind a week ago goes, a fresh one stays.
    await put(dir, '.lipsync/incoming/pgone-1/docs/a', 'A');
    await put(dir, '.lipsync/incoming/plive-1/docs/b', 'B');
    const weekAgo = new Date(Date.now() - 8 * 86_400_000);
    utimesSync(join(dir, '.lipsync/incoming/pgone-1'), weekAgo, weekAgo);
    await ops.purgeTrash(30);
    expect(readdirSync(join(dir, '.lipsync/incoming'))).toEqual(['plive-1']);
    // No trash at all: nothing to do.
    const other = await root('empty');
    expect(await other.ops.purgeTrash(30)).toBe(0);
    await expect(remoteOps(spec(join(dir, 'missing')), ssh).purgeTrash(30)).rejects.toMatchObject({
      kind: 'remote-missing',
    });
  });
});

describe('purgeLocalTrash', () => {
  it('removes the local root’s old trash day dirs; local-missing for a missing root', async () => {
    const base = await makeTempDir('lipsync-local-trash');
    try {
      const now = new Date('2026-11-25T00:30:00Z');
      for (const d of ['2026-11-17', '2026-11-18', '2026-11-24']) await put(base, `.lipsync/trash/${d}/t/f`, d);
      expect(await purgeLocalTrash(base, 7, now)).toBe(1);
      expect(readdirSync(join(base, '.lipsync/trash')).sort()).toEqual(['2026-11-18', '2026-11-24']);
      await expect(purgeLocalTrash(join(base, 'missing'), 7, now)).rejects.toMatchObject({ kind: 'local-missing' });
      await expect(purgeLocalTrash(base, -1, now)).rejects.toBeInstanceOf(LipsyncError);
      // Some mtime-based age would not matter: only the names count.
      await utimes(join(base, '.lipsync/trash/2026-11-24'), new Date(0), new Date(0));
      expect(await purgeLocalTrash(base, 7, now)).toBe(0);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
