// Three clients on one server folder share ONE watcher (remote/journal.ts, rules J1–J7 of
// docs/sync-semantics.md): against the harness sshd, on this machine, so "the server's
// processes" are processes here. Each client is a real SshInotifyWatcher with its own id.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import {
  createRemoteWatcher,
  type RemoteChange,
  type RemoteWatchHandlers,
} from '../../electron/engine/remote/watch.js';
import { SshInotifyWatcher } from '../../electron/engine/remote/watch-inotify-ssh.js';
import { closeMaster } from '../../electron/engine/remote/ssh.js';
import { withEnv } from '../support/env.js';
import {
  followerOf,
  killAll,
  sharedProcsUnder,
  watchedInodesOf,
  watchersOn,
  watchesOf,
  writersOn,
} from '../support/server-procs.js';
import type { RemoteCapabilities, RemoteSpec, SshOptions } from '../../electron/engine/types.js';

const FIND: RemoteCapabilities = { inotifywait: true, gnuFind: true };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Client extends RemoteWatchHandlers {
  name: string;
  changes: RemoteChange[];
  rescans: string[];
  notices: string[];
  states: { connected: boolean; error?: string }[];
  saw(path: string): boolean;
  w: SshInotifyWatcher;
}

let server: SshServer;
let base: string;
let ssh: SshOptions;
let n = 0;
const started: Client[] = [];

const spec = (path: string): RemoteSpec => ({ kind: 'ssh', host: 'lipsync-test', path });

function client(root: string, name: string): Client {
  const changes: RemoteChange[] = [];
  const rescans: string[] = [];
  const notices: string[] = [];
  const states: { connected: boolean; error?: string }[] = [];
  const handlers: RemoteWatchHandlers = {
    onChanges: (ch) => changes.push(...ch),
    onRescanNeeded: (reason) => rescans.push(reason),
    onState: (st) => states.push(st),
    onNotice: (msg) => notices.push(msg),
  };
  const w = createRemoteWatcher(spec(root), ssh, root, FIND, handlers, { clientId: name, backoffMaxMs: 2000 });
  const c: Client = {
    ...handlers,
    name,
    changes,
    rescans,
    notices,
    states,
    saw: (path) => changes.some((ch) => ch.path === path),
    w: w as SshInotifyWatcher,
  };
  started.push(c);
  return c;
}

async function newRoot(): Promise<string> {
  n++;
  const dir = join(base, `t${n}`, `ro'ot $(x) *`);
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'sub', 'old'), 'old');
  return dir;
}

beforeAll(async () => {
  base = await makeTempDir('lipsync-shared');
  server = await startSshd();
  ssh = { controlDir: join(base, 'ctl'), configFile: server.sshConfigFile };
});

afterAll(async () => {
  for (const c of started) await c.w.stop();
  if (server) {
    await closeMaster({ host: 'lipsync-test' }, ssh);
    await server.stop();
  }
  // The shared watchers outlive their clients for up to 10 s: end them before removing their folders.
  killAll(sharedProcsUnder(base));
  if (base) await rm(base, { recursive: true, force: true, maxRetries: 5 });
});

describe('one shared watcher for three clients', () => {
  it('three clients starting at once end with one watcher; every change reaches all three', async () => {
    const root = await newRoot();
    const cs = ['a', 'b', 'c'].map((name) => client(root, name));
    await Promise.all(cs.map((c) => c.w.start()));
    for (const c of cs) expect(c.w.sharedWatcher).toBe(true);
    // One watcher, one writer, whatever the number of clients: its watches are the only ones in
    // the tree; each follower holds one, on the journal's folder (J7: woken when it changes).
    expect(watchersOn(root)).toHaveLength(1);
    expect(writersOn(root)).toHaveLength(1);
    const followers = cs.map((c) => followerOf(root, c.name));
    expect(followers.every((p) => p !== undefined)).toBe(true);
    const journalIno = statSync(join(root, '.lipsync', 'journal')).ino;
    expect(watchedInodesOf(followers as number[])).toEqual([journalIno, journalIno, journalIno]);
    expect(watchesOf(watchersOn(root))).toBe(2); // the root and sub/

    const t0 = Date.now();
    await writeFile(join(root, 'sub', 'new'), 'x');
    await waitFor('all three see sub/new', () => cs.every((c) => c.saw('sub/new')));
    expect(Date.now() - t0).toBeLessThan(2000);
    // Its creation and its close after writing are two records: a follower may pass them on
    // in two reads, so the second can come a poll (50 ms) after the first is seen.
    const written = (c: (typeof cs)[number]) => c.changes.some((ch) => ch.path === 'sub/new' && ch.kind === 'modify');
    await waitFor('all three see sub/new written', () => cs.every(written));
    expect(Date.now() - t0).toBeLessThan(2000);
    for (const c of cs) {
      expect(c.changes.filter((ch) => ch.path === 'sub/new').map((ch) => ch.kind)).toContain('modify');
      expect(c.rescans).toEqual([]);
    }
    // The journal itself is never reported.
    expect(cs.some((c) => c.changes.some((ch) => ch.path.startsWith('.lipsync')))).toBe(false);
  });

  it('kill -9 of the shared watcher is healed within seconds; a change made in the gap arrives', async () => {
    const root = await newRoot();
    const cs = ['a', 'b', 'c'].map((name) => client(root, name));
    await Promise.all(cs.map((c) => c.w.start()));
    const [ww] = watchersOn(root);
    const [jw] = writersOn(root);
    await sleep(1500); // a beat or two: the horizon is recent
    process.kill(ww!, 'SIGKILL');
    process.kill(jw!, 'SIGKILL');
    const killedAt = Date.now();
    await writeFile(join(root, 'sub', 'in-the-gap'), 'x');
    await mkdir(join(root, 'gapdir'));
    await writeFile(join(root, 'gapdir', 'f'), 'x');
    await waitFor('all three see the gap change', () => cs.every((c) => c.saw('sub/in-the-gap')), 30_000);
    const healedMs = Date.now() - killedAt;
    expect(healedMs).toBeLessThan(20_000);
    for (const c of cs) {
      expect(c.saw('gapdir')).toBe(true);
      // Resumed where it was, with the new watcher's listing of what changed since the old one's horizon.
      expect(c.rescans).toEqual([]);
    }
    // One new watcher.
    await waitFor('one watcher', () => watchersOn(root).length === 1 && writersOn(root).length === 1);
    expect(watchersOn(root)[0]).not.toBe(ww);
    await writeFile(join(root, 'after'), 'x');
    await waitFor('all three see a change after the handover', () => cs.every((c) => c.saw('after')));
    expect(writersOn(root)).toHaveLength(1);
  });

  it('a journal removed on the server and begun again makes its clients rescan, not resume in the wrong file', async () => {
    const root = await newRoot();
    const a = client(root, 'a');
    await a.w.start();
    await writeFile(join(root, 'one'), 'x');
    await waitFor('a sees one', () => a.saw('one'));
    killAll([...watchersOn(root), ...writersOn(root)]);
    await rm(join(root, '.lipsync', 'journal'), { recursive: true, force: true });
    await waitFor('a rescans', () => a.rescans.length > 0, 30_000);
    expect(a.rescans).toEqual(['overflow']);
    await writeFile(join(root, 'two'), 'x');
    await waitFor('a follows the new journal', () => a.saw('two'));
    expect(watchersOn(root)).toHaveLength(1);
  });

  describe('with journal files of 2 KiB', () => {
    withEnv('LIPSYNC_JOURNAL_LIMIT', '2048');

    it('a client stopped while the journal rotates past it rescans; the others miss nothing', async () => {
      const root = await newRoot();
      const cs = ['a', 'b', 'c'].map((name) => client(root, name));
      await Promise.all(cs.map((c) => c.w.start()));
      const [a, b, c] = cs as [Client, Client, Client];
      const journal = join(root, '.lipsync', 'journal');
      const gens = (): number[] =>
        readdirSync(journal)
          .filter((f) => /^\d+$/.test(f))
          .map(Number);
      const first = Math.min(...gens());
      const follower = followerOf(root, 'c');
      expect(follower).toBeDefined();
      process.kill(follower!, 'SIGSTOP');
      try {
        // ~115 bytes of records per file: 150 files fill 8 journal files of 2 KiB (4 are kept).
        const names = Array.from({ length: 150 }, (_, i) => `sub/a-name-long-enough-to-fill-the-journal-${i}`);
        for (const [i, name] of names.entries()) {
          await writeFile(join(root, name), 'x');
          // Paced, so that a and b (reading every 0.1 s when idle) keep within 4 files of the writer.
          if (i % 5 === 4) await sleep(100);
        }
        await waitFor('a and b see every file', () => [a, b].every((x) => names.every(x.saw)), 10_000);
        expect(Math.min(...gens())).toBeGreaterThan(first + 2); // the first ones are gone
        expect(gens().length).toBeLessThanOrEqual(4);
      } finally {
        process.kill(follower!, 'SIGCONT');
      }
      await waitFor('c rescans', () => c.rescans.length > 0, 10_000);
      expect(c.rescans).toContain('overflow');
      expect(a.rescans).toEqual([]);
      expect(b.rescans).toEqual([]);
      await writeFile(join(root, 'later'), 'x');
      await waitFor('c follows on', () => c.saw('later'));
    });
  });

  it('the watcher stops when the last client leaves, and the next client starts one again', async () => {
    const root = await newRoot();
    const cs = ['a', 'b'].map((name) => client(root, name));
    await Promise.all(cs.map((c) => c.w.start()));
    expect(watchersOn(root)).toHaveLength(1);
    await cs[0]!.w.stop();
    await sleep(12_000);
    expect(watchersOn(root)).toHaveLength(1); // b still follows
    await cs[1]!.w.stop();
    expect(readdirSync(join(root, '.lipsync', 'journal', 'clients'))).toEqual([]);
    await waitFor('no watcher', () => watchersOn(root).length === 0 && writersOn(root).length === 0, 15_000);
    const again = client(root, 'd');
    await again.w.start();
    await writeFile(join(root, 'back'), 'x');
    await waitFor('d sees a change', () => again.saw('back'));
    expect(again.rescans).toEqual([]);
  });

  it('a client that cannot use the journal says why and watches on its own', async () => {
    const root = await newRoot();
    await mkdir(join(root, '.lipsync'));
    await writeFile(join(root, '.lipsync', 'journal'), 'not a folder');
    const c = client(root, 'a');
    await c.w.start();
    expect(c.w.sharedWatcher).toBe(false);
    expect(c.notices).toHaveLength(1);
    expect(c.notices[0]).toMatch(/journal is not writable by the server user .*watches .* on its own/);
    await writeFile(join(root, 'sub', 'x'), 'x');
    await waitFor('c sees a change', () => c.saw('sub/x'));
    expect(writersOn(root)).toHaveLength(0);
  });

  it('a client restarting after a clean stop gets what changed since its marker, then follows', async () => {
    const root = await newRoot();
    const other = client(root, 'other');
    await other.w.start();
    await mkdir(join(root, '.lipsync'), { recursive: true });
    const marker = join(root, '.lipsync', 'poll-marker-me');
    await writeFile(marker, '');
    const past = new Date(Date.now() - 3000);
    await utimes(marker, past, past);
    await writeFile(join(root, 'sub', 'since'), 'x');
    const c = client(root, 'me');
    const w = createRemoteWatcher(spec(root), ssh, root, FIND, c, { clientId: 'me', sinceMarkerId: 'me' });
    started.push({ ...c, w: w as SshInotifyWatcher });
    await w.start();
    const snap = w.changedSince?.();
    expect(snap).toBeTruthy();
    expect(new Map(snap!.dirs).get('sub')).toBe('all');
    expect(JSON.stringify(snap)).not.toContain('.lipsync');
    await writeFile(join(root, 'next'), 'x');
    await waitFor('then follows', () => c.saw('next'));
    expect(watchersOn(root)).toHaveLength(1);
  });
});

describe('J7: woken by the journal folder, not only by the poll', () => {
  // A poll of 60 s: only the wake-up can bring a change within waitFor's 5 s.
  withEnv('LIPSYNC_JOURNAL_POLL_MS', '60000');

  it('each kind of single change arrives long before the poll; a follower holds one watch, on the journal folder', async () => {
    const root = await newRoot();
    const cs = ['a', 'b'].map((name) => client(root, name));
    await Promise.all(cs.map((c) => c.w.start()));
    // The watcher's two watches (the root and sub/) are the tree's; each follower's one is the journal folder's.
    expect(watchesOf(watchersOn(root))).toBe(2);
    const journalIno = statSync(join(root, '.lipsync', 'journal')).ino;
    for (const c of cs) expect(watchedInodesOf([followerOf(root, c.name)!])).toEqual([journalIno]);
    // Changes that are one journal record each, and one that is several.
    const steps: [string, () => Promise<void>, string][] = [
      ['write', () => writeFile(join(root, 'sub', 'w'), 'x'), 'sub/w'],
      ['rename', () => rename(join(root, 'sub', 'old'), join(root, 'moved')), 'moved'],
      ['chmod', () => chmod(join(root, 'moved'), 0o600), 'moved'],
      ['mkdir', () => mkdir(join(root, 'newdir')), 'newdir'],
      ['delete', () => rm(join(root, 'sub', 'w')), 'sub/w'],
    ];
    for (const [what, act, path] of steps) {
      const before = cs.map((c) => c.changes.length);
      await act();
      await waitFor(`both see the ${what}`, () =>
        cs.every((c, k) => c.changes.slice(before[k]).some((ch) => ch.path === path)),
      );
    }
    for (const c of cs) expect(c.rescans).toEqual([]);
  });
});
