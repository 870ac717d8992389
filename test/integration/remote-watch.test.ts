// Remote capabilities, stat, streaming listings and the remote change feed,
// against the harness sshd (same machine: the remote folder is also a local
// folder the test edits directly, as if someone worked on the server).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, lstat, mkdir, rename, rm, rmdir, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { freePort, makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import { listRemote } from '../../electron/engine/remote/list.js';
import { probeCapabilities } from '../../electron/engine/remote/probe.js';
import { statRemote } from '../../electron/engine/remote/stat.js';
import {
  createRemoteWatcher,
  type RemoteChange,
  type RemoteWatchHandlers,
  type RemoteWatcher,
} from '../../electron/engine/remote/watch.js';
import { SshInotifyWatcher } from '../../electron/engine/remote/watch-inotify-ssh.js';
import { closeMaster } from '../../electron/engine/remote/ssh.js';
import { withEnv } from '../support/env.js';
import { procsWhere } from '../support/server-procs.js';
import { createExcluder } from '../../electron/engine/excludes.js';
import { LipsyncError } from '../../electron/engine/errors.js';
import { liveChildCount } from '../../electron/engine/proc/run.js';
import type {
  RemoteCapabilities,
  RemoteEntry,
  RemoteSpec,
  RemoteStat,
  SshOptions,
} from '../../electron/engine/types.js';

const RAND = randomBytes(6).toString('hex');
const PWNED = `/tmp/lipsync-pwned-listing-${RAND}`;
const LONG_UTF8 = 'é'.repeat(100);
/** Names that would break a shell, find or rsync if mishandled. */
const STRANGE = [
  `$(touch ${PWNED})`,
  `\`touch ${PWNED}\``,
  `; touch ${PWNED}`,
  '-delete',
  '-maxdepth',
  '#hash',
  ';semi',
  'new\nline',
  'tab\there',
  'back\\slash',
  'back\\#123',
  'it\'s "quoted"',
  'a -> b',
  ' leading space',
  LONG_UTF8,
];

const FIND: RemoteCapabilities = { inotifywait: true, gnuFind: true };
const RSYNC: RemoteCapabilities = { inotifywait: false, gnuFind: false };
const POLL: RemoteCapabilities = { inotifywait: false, gnuFind: true };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function put(root: string, rel: string, content = 'x'): Promise<void> {
  const p = join(root, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Pids of the server's watcher processes, inotifywait or walkwatch's perl (anywhere on this
 * machine, so also "on the server"), watching `root`; `exe` keeps only that one.
 */
function inotifywaitsOn(root: string, exe?: 'inotifywait' | 'perl'): number[] {
  return procsWhere((args) => {
    const name = (args[0] ?? '').split('/').pop();
    return (name === 'inotifywait' || name === 'perl') && (exe === undefined || name === exe) && args.includes(root);
  }).map((p) => p.pid);
}

async function expectNoInotifywait(root: string): Promise<void> {
  await waitFor(`no inotifywait on ${root}`, () => inotifywaitsOn(root).length === 0, 5000);
}

/** The local truth for a path, in RemoteStat terms. */
async function truth(abs: string): Promise<RemoteStat | null> {
  try {
    const st = await lstat(abs, { bigint: true });
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : null;
    if (kind === null) return null;
    const { readlink } = await import('node:fs/promises');
    return {
      kind,
      size: Number(st.size),
      mtimeNs: st.mtimeNs,
      mode: Number(st.mode & 0o7777n),
      ino: st.ino,
      target: kind === 'symlink' ? await readlink(abs) : null,
    };
  } catch {
    return null;
  }
}

/** The same stat with whole-second mtime and no inode (what an rsync listing can tell). */
function coarse(s: RemoteStat | null): RemoteStat | null {
  if (s === null) return null;
  return { ...s, mtimeNs: (s.mtimeNs / 1_000_000_000n) * 1_000_000_000n, ino: null };
}

async function collect(it: AsyncIterable<RemoteEntry>): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of it) out.push(e);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

interface Recorder extends RemoteWatchHandlers {
  changes: RemoteChange[];
  rescans: string[];
  states: { mode: 'inotify' | 'poll'; connected: boolean; error?: string }[];
  has(path: string, kind?: RemoteChange['kind'], isDir?: boolean): boolean;
  clear(): void;
}

function recorder(): Recorder {
  const r: Recorder = {
    changes: [],
    rescans: [],
    states: [],
    onChanges: (c) => r.changes.push(...c),
    onRescanNeeded: (reason) => r.rescans.push(reason),
    onState: (s) => r.states.push(s),
    has: (path, kind, isDir) =>
      r.changes.some(
        (c) => c.path === path && (kind === undefined || c.kind === kind) && (isDir === undefined || c.isDir === isDir),
      ),
    clear: () => {
      r.changes.length = 0;
      r.rescans.length = 0;
      r.states.length = 0;
    },
  };
  return r;
}

let server: SshServer;
let base: string;
let ssh: SshOptions;
let n = 0;
const watchers: RemoteWatcher[] = [];

const sshSpec = (path: string): RemoteSpec => ({ kind: 'ssh', host: 'lipsync-test', path });

/**
 * A fresh root whose name needs quoting and holds wildcards (find -path, and
 * rsync expands them in a source path), next to a decoy those wildcards match.
 */
async function newRoot(): Promise<string> {
  n++;
  const dir = join(base, `t${n}`, `ro'ot $(x) [g]*? \\b`);
  await mkdir(dir, { recursive: true });
  await put(join(base, `t${n}`), `ro'ot $(x) gX b/decoy`, 'decoy');
  return dir;
}

beforeAll(async () => {
  base = await makeTempDir('lipsync-rwatch');
  server = await startSshd();
  ssh = { controlDir: join(base, 'ctl'), configFile: server.sshConfigFile };
});

afterAll(async () => {
  for (const w of watchers) await w.stop();
  if (server) {
    await closeMaster({ host: 'lipsync-test' }, ssh);
    await server.stop();
  }
  if (base) await rm(base, { recursive: true, force: true });
  expect(existsSync(PWNED)).toBe(false);
});

describe('probeCapabilities', () => {
  it('finds inotifywait and GNU find on this server, and locally', async () => {
    expect(await probeCapabilities(sshSpec('/'), ssh)).toEqual({ inotifywait: true, gnuFind: true });
    expect(await probeCapabilities({ kind: 'local', path: base }, ssh)).toEqual({ inotifywait: true, gnuFind: true });
  });

  it('reports an unreachable server as a LipsyncError', async () => {
    const closed: RemoteSpec = { kind: 'ssh', host: '127.0.0.1', port: await freePort(), path: '/' };
    const err = await probeCapabilities(closed, ssh).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LipsyncError);
    expect(err).toMatchObject({ kind: 'host-unreachable' });
  });
});

describe.each([
  ['ssh + GNU find', 'ssh', FIND],
  ['ssh + rsync listing', 'ssh', RSYNC],
  ['local', 'local', FIND],
] as const)('statRemote (%s)', (_name, kind, caps) => {
  const exact = !(kind === 'ssh' && !caps.gnuFind);

  it('stats files, folders, symlinks, missing paths and the root, in order', async () => {
    const root = await newRoot();
    const spec: RemoteSpec = kind === 'ssh' ? sshSpec(root) : { kind: 'local', path: root };
    await put(root, 'file.txt', 'hello');
    await put(root, 'dir/inner', 'x');
    await symlink('file.txt', join(root, 'link'));
    await symlink('some -> target', join(root, 'arrow link'));
    await symlink('a', join(root, 'a -> b'));
    await put(root, 'exec.sh', '#!/bin/sh\n');
    const { chmod } = await import('node:fs/promises');
    await chmod(join(root, 'exec.sh'), 0o4755);
    const paths = ['file.txt', 'dir', 'link', 'missing', 'dir/inner', 'file.txt/below', '', 'arrow link', 'a -> b'];
    paths.push('exec.sh', 'missing/deeper', 'file.txt');
    const got = await statRemote(spec, ssh, root, paths, caps);
    expect(got).toHaveLength(paths.length);
    for (const [i, p] of paths.entries()) {
      const want = await truth(join(root, p));
      expect(got[i], p).toEqual(exact ? want : coarse(want));
    }
    expect(got[3]).toBe(null);
    expect(got[2]).toMatchObject({ kind: 'symlink', target: 'file.txt' });
    expect(got[7]).toMatchObject({ kind: 'symlink', target: 'some -> target' });
    expect(got[8]).toMatchObject({ kind: 'symlink', target: 'a' });
    expect(got[9]?.mode).toBe(0o4755);
    expect(await statRemote(spec, ssh, root, [], caps)).toEqual([]);
  });

  it('handles strange names without running anything', async () => {
    const root = await newRoot();
    const spec: RemoteSpec = kind === 'ssh' ? sshSpec(root) : { kind: 'local', path: root };
    for (const name of STRANGE) await put(root, name, name);
    const paths = [...STRANGE, ...STRANGE.map((s) => `${s}-missing`)];
    const got = await statRemote(spec, ssh, root, paths, caps);
    for (const [i, p] of paths.entries()) {
      const want = await truth(join(root, p));
      expect(got[i], JSON.stringify(p)).toEqual(exact ? want : coarse(want));
    }
    expect(got.slice(0, STRANGE.length).every((s) => s?.kind === 'file')).toBe(true);
    expect(got.slice(STRANGE.length).every((s) => s === null)).toBe(true);
    expect(existsSync(PWNED)).toBe(false);
  });

  it('fails for a missing root or a root that is a file, and refuses bad paths', async () => {
    const root = join(await newRoot(), 'gone');
    const spec: RemoteSpec = kind === 'ssh' ? sshSpec(root) : { kind: 'local', path: root };
    // Not "everything was deleted": an unmounted disk must not look like an empty folder.
    await expect(statRemote(spec, ssh, root, ['a'], caps)).rejects.toMatchObject({ kind: 'remote-missing' });
    await expect(statRemote(spec, ssh, root, ['', 'a'], caps)).rejects.toMatchObject({ kind: 'remote-missing' });
    await put(dirname(root), 'gone', 'a file');
    const notDir = await statRemote(spec, ssh, root, ['a'], caps).catch((e: unknown) => e);
    // rsync can't tell "not a folder" from "missing" for a root with wildcards (it globs it).
    expect(exact ? ['remote-not-dir'] : ['remote-not-dir', 'remote-missing']).toContain((notDir as LipsyncError).kind);
    await expect(statRemote(spec, ssh, root, ['../etc/passwd'], caps)).rejects.toBeInstanceOf(LipsyncError);
    await expect(statRemote(spec, ssh, root, ['/etc/passwd'], caps)).rejects.toBeInstanceOf(LipsyncError);
  });
});

describe('listRemote', () => {
  let big: string;
  const FILES = 20_000;

  beforeAll(async () => {
    big = await newRoot();
    for (let d = 0; d < 20; d++) {
      await mkdir(join(big, `d${d}`, 'sub'), { recursive: true });
      const writes: Promise<void>[] = [];
      for (let f = 0; f < FILES / 20; f++)
        writes.push(writeFile(join(big, `d${d}`, f % 2 ? `f${f}` : `sub/f${f}`), `${f}`));
      await Promise.all(writes);
    }
    for (const name of STRANGE) await put(big, `strange/${name}`, name);
    await symlink('../d0', join(big, 'strange', 'dirlink'));
    await put(big, '.lipsync/trash/old', 'trash');
    await put(big, 'nested/.lipsync-not/x', 'kept');
  }, 120_000);

  it('streams 20,000 files the same way with find, with rsync, and locally', async () => {
    const byFind = await collect(listRemote(sshSpec(big), ssh, big, '', FIND));
    const byRsync = await collect(listRemote(sshSpec(big), ssh, big, '', RSYNC));
    const local = await collect(listRemote({ kind: 'local', path: big }, ssh, big, '', FIND));
    expect(byFind.filter((e) => e.kind === 'file').length).toBe(FILES + STRANGE.length + 1);
    expect(byFind.some((e) => e.path.startsWith('.lipsync'))).toBe(false);
    expect(byFind.some((e) => e.path === 'nested/.lipsync-not/x')).toBe(true);
    expect(byFind.map((e) => e.path)).toEqual(local.map((e) => e.path));
    expect(byFind).toEqual(local);
    expect(byRsync.map((e) => e.path)).toEqual(byFind.map((e) => e.path));
    expect(byRsync).toEqual(byFind.map((e) => ({ ...e, ...coarse(e) })));
    for (const name of STRANGE) expect(byFind.some((e) => e.path === `strange/${name}`)).toBe(true);
    expect(byFind.find((e) => e.path === 'strange/dirlink')).toMatchObject({ kind: 'symlink', target: '../d0' });
    // Every entry matches the disk.
    for (const e of byFind.filter((_, i) => i % 997 === 0)) {
      const { path, ...stat } = e;
      expect(stat).toEqual(await truth(join(big, path)));
    }
    expect(existsSync(PWNED)).toBe(false);
  }, 120_000);

  it('lists one level, a sub folder, and applies the excluder', async () => {
    for (const [spec, caps] of [
      [sshSpec(big), FIND],
      [sshSpec(big), RSYNC],
      [{ kind: 'local', path: big } as RemoteSpec, FIND],
    ] as const) {
      const top = await collect(listRemote(spec, ssh, big, '', caps, { recursive: false }));
      expect(top.map((e) => e.path)).toEqual([
        ...Array.from({ length: 20 }, (_, d) => `d${d}`).sort(),
        'nested',
        'strange',
      ]);
      const sub = await collect(listRemote(spec, ssh, big, 'd3', caps));
      expect(sub.length).toBe(FILES / 20 + 1);
      expect(sub.every((e) => e.path.startsWith('d3/'))).toBe(true);
      const excluder = createExcluder(['sub/', 'f1*', '!f1']);
      const ex = await collect(listRemote(spec, ssh, big, 'd3', caps, { excluder }));
      expect(ex.some((e) => e.path.includes('/sub'))).toBe(false);
      expect(ex.some((e) => /\/f1\d/.test(e.path))).toBe(false);
      expect(ex.some((e) => e.path === 'd3/f3')).toBe(true);
      expect(await collect(listRemote(spec, ssh, big, 'd3/sub', caps, { excluder }))).toEqual([]);
    }
  }, 120_000);

  it('takes a root with a backslash but no wildcard literally (rsync listing)', async () => {
    const root = join(base, 'plain\\back');
    await put(root, 'inside', 'x');
    await put(join(base, 'plainback'), 'decoy', 'x');
    expect((await collect(listRemote(sshSpec(root), ssh, root, '', RSYNC))).map((e) => e.path)).toEqual(['inside']);
    const stats = await statRemote(sshSpec(root), ssh, root, ['inside', '', 'decoy'], RSYNC);
    expect(stats.map((s) => s?.kind ?? null)).toEqual(['file', 'dir', null]);
  });

  it('stops the listing command when the consumer stops early', async () => {
    for (const caps of [FIND, RSYNC]) {
      const before = liveChildCount();
      let count = 0;
      for await (const _ of listRemote(sshSpec(big), ssh, big, '', caps)) {
        if (++count === 10) break;
      }
      expect(count).toBe(10);
      await waitFor('the listing process to end', () => liveChildCount() === before);
    }
  });

  it('fails clearly for a missing or non-folder start', async () => {
    for (const [spec, caps] of [
      [sshSpec(big), FIND],
      [sshSpec(big), RSYNC],
      [{ kind: 'local', path: big } as RemoteSpec, FIND],
    ] as const) {
      const missing = await collect(listRemote(spec, ssh, big, 'nope', caps)).catch((e: unknown) => e);
      expect(missing, JSON.stringify(caps)).toMatchObject({ kind: 'remote-missing' });
      const file = await collect(listRemote(spec, ssh, big, 'd0/f1', caps)).catch((e: unknown) => e);
      // rsync can't tell "not a folder" from "missing" for a root with wildcards (it globs it).
      const kinds = caps === RSYNC ? ['remote-not-dir', 'remote-missing'] : ['remote-not-dir'];
      expect(kinds, JSON.stringify(caps)).toContain((file as LipsyncError).kind);
      expect((file as LipsyncError).message).toContain(join(big, 'd0/f1'));
    }
  });
});

describe.each([
  ['walkwatch', undefined, 'perl'],
  ['inotifywait', '0', 'inotifywait'],
] as const)('remote watcher, inotify mode over ssh (%s)', (_name, env, exe) => {
  withEnv('LIPSYNC_WALKWATCH', env);

  it('reports creations, writes, renames and deletions made on the server within about a second', async () => {
    const root = await newRoot();
    const rec = recorder();
    const w = createRemoteWatcher(sshSpec(root), ssh, root, FIND, rec, { excluder: createExcluder(['*.tmp']) });
    watchers.push(w);
    expect(w.mode).toBe('inotify');
    await w.start();
    expect(rec.states).toEqual([{ mode: 'inotify', connected: true }]);

    let t0 = Date.now();
    await put(root, 'f1', 'one');
    await waitFor('f1 created', () => rec.has('f1', 'create', false) && rec.has('f1', 'modify', false));
    expect(Date.now() - t0).toBeLessThan(1500);

    await appendFile(join(root, 'f1'), 'more');
    await waitFor('f1 modified', () => rec.changes.filter((c) => c.path === 'f1' && c.kind === 'modify').length === 2);

    t0 = Date.now();
    await mkdir(join(root, 'd1'));
    await waitFor('d1 created', () => rec.has('d1', 'create', true));
    expect(Date.now() - t0).toBeLessThan(1500);

    await rename(join(root, 'f1'), join(root, 'd1', 'f2'));
    await waitFor('f1 moved', () => rec.has('f1', 'move-from', false) && rec.has('d1/f2', 'move-to', false));
    await rename(join(root, 'd1'), join(root, 'd2'));
    await waitFor('d1 moved', () => rec.has('d1', 'move-from', true) && rec.has('d2', 'move-to', true));
    await unlink(join(root, 'd2', 'f2'));
    await waitFor('f2 deleted', () => rec.has('d2/f2', 'delete', false));
    await rmdir(join(root, 'd2'));
    await waitFor('d2 deleted', () => rec.has('d2', 'delete', true));

    const { utimes: setTimes } = await import('node:fs/promises');
    await put(root, 'attr', 'a');
    await setTimes(join(root, 'attr'), new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    await waitFor('attr changed', () => rec.has('attr', 'attrib', false));

    const strange = STRANGE.find((s) => s.includes('\n')) as string;
    await put(root, strange, 's');
    await waitFor('strange name', () => rec.has(strange, 'create', false));

    // Excluded and state-folder paths are not reported.
    await put(root, 'junk.tmp', 'x');
    await put(root, '.lipsync/partial/x', 'x');
    await put(root, 'after', 'x');
    await waitFor('after', () => rec.has('after', 'create'));
    expect(rec.changes.some((c) => c.path.endsWith('.tmp') || c.path.startsWith('.lipsync'))).toBe(false);
    expect(rec.rescans).toEqual([]);

    expect(inotifywaitsOn(root, exe)).toHaveLength(1);
    await w.stop();
    await expectNoInotifywait(root);
    expect((w as SshInotifyWatcher).pid).toBeUndefined();
    expect(existsSync(PWNED)).toBe(false);
  });

  it('reconnects after the ssh process is killed, and asks for a rescan', async () => {
    const root = await newRoot();
    const rec = recorder();
    const w = createRemoteWatcher(sshSpec(root), ssh, root, FIND, rec, { backoffMaxMs: 2000 });
    watchers.push(w);
    await w.start();
    expect(w).toBeInstanceOf(SshInotifyWatcher);
    const pid = (w as SshInotifyWatcher).pid as number;
    expect(pid).toBeGreaterThan(0);
    expect(inotifywaitsOn(root)).toHaveLength(1);

    process.kill(pid, 'SIGKILL');
    await waitFor('disconnected', () => rec.states.some((s) => !s.connected));
    // The server side ended with the connection.
    await expectNoInotifywait(root);
    await waitFor('reconnected', () => rec.rescans.includes('reconnected'), 10_000);
    expect(rec.states.at(-1)).toEqual({ mode: 'inotify', connected: true });
    expect((w as SshInotifyWatcher).pid).not.toBe(pid);
    expect(inotifywaitsOn(root)).toHaveLength(1);

    await put(root, 'after-reconnect', 'x');
    await waitFor('event after reconnect', () => rec.has('after-reconnect', 'create'));
    await w.stop();
    await expectNoInotifywait(root);
  });

  it('leaves nothing behind when ssh is killed and the watcher is stopped while it waits to reconnect', async () => {
    const root = await newRoot();
    const rec = recorder();
    const w = createRemoteWatcher(sshSpec(root), ssh, root, FIND, rec, { backoffMaxMs: 60_000 });
    watchers.push(w);
    await w.start();
    process.kill((w as SshInotifyWatcher).pid as number, 'SIGKILL');
    await waitFor('disconnected', () => rec.states.some((s) => !s.connected));
    await w.stop();
    await expectNoInotifywait(root);
    await sleep(1500);
    expect(inotifywaitsOn(root)).toEqual([]);
    expect(rec.rescans).toEqual([]);
  });

  it('asks for a rescan when the inotify queue on the server overflows, and keeps watching', async () => {
    const root = await newRoot();
    const rec = recorder();
    const w = createRemoteWatcher(sshSpec(root), ssh, root, FIND, rec);
    watchers.push(w);
    await w.start();
    const [pid] = inotifywaitsOn(root);
    const queued = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
    // Freeze the server's inotifywait so the kernel queue fills up: each file is a create + a close_write.
    process.kill(pid as number, 'SIGSTOP');
    try {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < queued / 2 + 1000; i++) writes.push(writeFile(join(root, `f${i}`), ''));
      await Promise.all(writes);
    } finally {
      process.kill(pid as number, 'SIGCONT');
    }
    await waitFor('overflow', () => rec.rescans.includes('overflow'), 20_000);
    await put(root, 'after-overflow', 'x');
    await waitFor('event after overflow', () => rec.has('after-overflow', 'create'), 10_000);
    expect(rec.states.every((st) => st.connected)).toBe(true);
    await w.stop();
    await expectNoInotifywait(root);
  });

  it('rejects start() for a missing root', async () => {
    const root = join(await newRoot(), 'missing');
    const w = createRemoteWatcher(sshSpec(root), ssh, root, FIND, recorder());
    await expect(w.start()).rejects.toMatchObject({ kind: 'remote-missing' });
    await w.stop();
  });
});

describe.each([
  ['ssh', (root: string): RemoteSpec => sshSpec(root)],
  ['local', (root: string): RemoteSpec => ({ kind: 'local', path: root })],
] as const)('the first watch walk lists what changed since the marker (%s)', (_name, spec) => {
  /** A tree, then the marker dated after it (whole seconds: a change in the marker's second is listed too). */
  async function treeAndMarker(): Promise<string> {
    const root = await newRoot();
    for (const f of ['old/keep', 'old/gone', 'same/x', 'other/y', 'a']) await put(root, f, 'v1');
    await sleep(1100);
    await put(root, '.lipsync/poll-marker-c1', '');
    const now = new Date();
    await utimes(join(root, '.lipsync/poll-marker-c1'), now, now);
    await sleep(1100);
    return root;
  }

  it('lists changed files and folders, leaves the unchanged and the excluded out, and then watches', async () => {
    const root = await treeAndMarker();
    await writeFile(join(root, 'other/y'), 'v2'); // content only: its folder's ctime stays
    await unlink(join(root, 'old/gone'));
    await put(root, 'newdir/f', 'n');
    await put(root, 'junk.tmp', 'x');
    const rec = recorder();
    const w = createRemoteWatcher(spec(root), ssh, root, FIND, rec, {
      excluder: createExcluder(['*.tmp']),
      sinceMarkerId: 'c1',
    });
    watchers.push(w);
    await w.start();
    const snap = w.changedSince?.();
    expect(snap).toBeTruthy();
    const dirs = new Map(snap!.dirs);
    expect(dirs.get('')).toBe('all'); // newdir and junk.tmp were added to the root
    expect(dirs.get('old')).toBe('all'); // gone was deleted from it
    expect(dirs.get('newdir')).toBe('all');
    expect(dirs.get('other')).toEqual(['y']);
    expect(dirs.has('same')).toBe(false);
    expect(JSON.stringify(snap)).not.toContain('junk.tmp');
    expect(JSON.stringify(snap)).not.toContain('.lipsync');
    expect(snap!.full).toBe(false);
    expect(rec.rescans).toEqual([]);
    // Watching goes on from the same walk.
    await put(root, 'same/later', 'x');
    await waitFor('event after the walk', () => rec.has('same/later', 'create', false));
    await w.stop();
    await expectNoInotifywait(root);
  });

  it('says "compare everything" (null) when the marker is missing', async () => {
    const root = await treeAndMarker();
    const w = createRemoteWatcher(spec(root), ssh, root, FIND, recorder(), { sinceMarkerId: 'other-client' });
    watchers.push(w);
    await w.start();
    expect(w.changedSince?.()).toBeNull();
    await w.stop();
  });

  describe('with LIPSYNC_WALKWATCH=0 (inotifywait)', () => {
    withEnv('LIPSYNC_WALKWATCH', '0');
    it('lists nothing: the caller runs its own listing', async () => {
      const root = await treeAndMarker();
      const w = createRemoteWatcher(spec(root), ssh, root, FIND, recorder(), { sinceMarkerId: 'c1' });
      watchers.push(w);
      await w.start();
      expect(w.changedSince?.()).toBeUndefined();
      expect(inotifywaitsOn(root, 'inotifywait')).toHaveLength(1);
      await w.stop();
      await expectNoInotifywait(root);
    });
  });
});

describe('remote watcher, inotify mode on a local remote', () => {
  it('uses the local watcher and reports changes', async () => {
    const root = await newRoot();
    const rec = recorder();
    const w = createRemoteWatcher({ kind: 'local', path: root }, ssh, root, FIND, rec);
    watchers.push(w);
    await w.start();
    await put(root, 'a/b', 'x');
    await waitFor('a created', () => rec.has('a', 'create', true));
    await unlink(join(root, 'a', 'b')).catch(() => undefined);
    await put(root, 'c', 'x');
    await waitFor('c created', () => rec.has('c', 'create', false));
    await w.stop();
    await expectNoInotifywait(root);
  });
});

describe.each([
  ['ssh', (root: string): RemoteSpec => sshSpec(root)],
  ['local', (root: string): RemoteSpec => ({ kind: 'local', path: root })],
] as const)('remote watcher, poll mode (%s)', (_name, spec) => {
  it('reports what changed since the last poll, by ctime, per client', async () => {
    const root = await newRoot();
    await put(root, 'old/keep', 'k');
    await put(root, 'old/gone', 'g');
    await put(root, 'a', 'a');
    const rec = recorder();
    const w = createRemoteWatcher(spec(root), ssh, root, POLL, rec, {
      pollIntervalMs: 3_600_000,
      clientId: 'client-a',
      excluder: createExcluder(['*.tmp']),
    });
    watchers.push(w);
    expect(w.mode).toBe('poll');
    await w.start();
    expect(rec.rescans).toEqual(['first poll']);
    expect(rec.states).toEqual([{ mode: 'poll', connected: true }]);
    expect(existsSync(join(root, '.lipsync', 'poll-marker-client-a'))).toBe(true);
    // Markers are dated 1 s back: what changed less than 2 s before a poll may be reported by
    // the next one too (never missed). After that, a poll without changes reports nothing.
    await sleep(2100);
    await w.pollNow();
    rec.clear();
    await w.pollNow();
    expect(rec.changes).toEqual([]);

    await put(root, 'new file', 'n');
    await writeFile(join(root, 'a'), 'changed');
    // Set the mtime far back, as rsync -t does: only the ctime shows the change.
    await utimes(join(root, 'a'), new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
    await unlink(join(root, 'old', 'gone'));
    await put(root, 'junk.tmp', 'x');
    await put(root, STRANGE[0] as string, 'x');
    await sleep(2100);
    await w.pollNow();
    expect(rec.has('new file', 'modify', false)).toBe(true);
    expect(rec.has('a', 'modify', false)).toBe(true);
    expect(rec.has('old', 'modify', true)).toBe(true); // the deletion shows as its folder changed
    expect(rec.has('', 'modify', true)).toBe(true);
    expect(rec.has(STRANGE[0] as string, 'modify', false)).toBe(true);
    expect(rec.has('old/keep')).toBe(false);
    expect(rec.has('old/gone')).toBe(false);
    expect(rec.changes.some((c) => c.path.endsWith('.tmp') || c.path.startsWith('.lipsync'))).toBe(false);
    expect(rec.rescans).toEqual([]);

    // A second client has its own marker: its first poll rescans, later ones see new changes.
    const rec2 = recorder();
    const w2 = createRemoteWatcher(spec(root), ssh, root, POLL, rec2, {
      pollIntervalMs: 3_600_000,
      clientId: 'client-b',
    });
    watchers.push(w2);
    await w2.start();
    expect(rec2.rescans).toEqual(['first poll']);
    rec.clear();
    await put(root, 'both', 'x');
    await w.pollNow();
    await w2.pollNow();
    expect(rec.has('both', 'modify')).toBe(true);
    expect(rec2.has('both', 'modify')).toBe(true);
    expect(rec.has('a')).toBe(false);

    // A restarted client with the same id continues from its marker.
    await w.stop();
    await put(root, 'while-stopped', 'x');
    const rec3 = recorder();
    const w3 = createRemoteWatcher(spec(root), ssh, root, POLL, rec3, {
      pollIntervalMs: 3_600_000,
      clientId: 'client-a',
    });
    watchers.push(w3);
    await w3.start();
    expect(rec3.rescans).toEqual([]);
    expect(rec3.has('while-stopped', 'modify')).toBe(true);
    await w2.stop();
    await w3.stop();
    expect(existsSync(PWNED)).toBe(false);
  });

  it('polls on its own every pollIntervalMs', async () => {
    const root = await newRoot();
    const rec = recorder();
    const w = createRemoteWatcher(spec(root), ssh, root, POLL, rec, { pollIntervalMs: 300, clientId: 'timer' });
    watchers.push(w);
    await w.start();
    await put(root, 'later', 'x');
    await waitFor('timer poll', () => rec.has('later', 'modify'), 5000);
    await w.stop();
  });

  it('asks for a full rescan on every poll without GNU find', async () => {
    const root = await newRoot();
    const rec = recorder();
    const w = createRemoteWatcher(spec(root), ssh, root, RSYNC, rec, { pollIntervalMs: 3_600_000 });
    watchers.push(w);
    await w.start();
    await w.pollNow();
    expect(rec.rescans).toEqual(['no GNU find on the server: full listing', 'no GNU find on the server: full listing']);
    await w.stop();
  });

  it('rejects start() for a missing root, and reports later failures with onState', async () => {
    const missing = join(await newRoot(), 'missing');
    const w = createRemoteWatcher(spec(missing), ssh, missing, POLL, recorder(), { pollIntervalMs: 3_600_000 });
    await expect(w.start()).rejects.toMatchObject({ kind: 'remote-missing' });

    const root = await newRoot();
    const rec = recorder();
    const w2 = createRemoteWatcher(spec(root), ssh, root, POLL, rec, { pollIntervalMs: 3_600_000 });
    watchers.push(w2);
    await w2.start();
    await rm(root, { recursive: true, force: true });
    await w2.pollNow();
    expect(rec.states.at(-1)).toMatchObject({ mode: 'poll', connected: false });
    expect(rec.states.at(-1)?.error).toMatch(/does not exist/);
    await w2.stop();
  });
});
