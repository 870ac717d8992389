/**
 * Three clients, one server folder, ONE watcher on the server (docs/sync-semantics.md,
 * "One watcher on the server for every client", J1–J7), end to end: three real daemons
 * (each its own config dir, data dir and local folder) paired with one folder through the
 * harness sshd, real rsync and inotify. The server runs on this machine, so its processes
 * are counted in /proc and its folder is changed directly, as a user on the server would.
 *
 * The full-disk case NEEDS ROOT (a small tmpfs); it is skipped, saying so, otherwise.
 * Times are printed as THREE-CLIENTS lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { requireBuild, treeSnapshot, waitFor } from '../support/cli.js';
import {
  followersOn,
  killAll,
  loneWatchersOn,
  serverReport,
  watchersOn,
  watchedInodesOf,
  watchesOf,
  writersOn,
} from '../support/server-procs.js';
import {
  hashAll,
  liveFiles,
  makeClient,
  makeServerDir,
  pairStatus,
  sha256,
  sleep,
  start,
  stop,
  treeDiff,
  waitIdle,
  waitStreaming,
  type Client,
} from '../support/twoway.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('three-clients.test.ts: the full-disk case is skipped: it needs root (mount -t tmpfs).');

let server: SshServer;
const running: Client[] = [];
const roots: string[] = [];
const mounts: string[] = [];
const times: Record<string, number> = {};

/** Records and prints a time (seconds). */
function took(what: string, since: number): number {
  const s = (Date.now() - since) / 1000;
  times[what] = s;
  console.log(`THREE-CLIENTS ${what}: ${s.toFixed(1)} s`);
  return s;
}

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});

afterAll(async () => {
  // In parallel: a daemon that does not end on SIGINT is killed after 20 s, and said so.
  const ends = await Promise.all(running.splice(0).map(async (c) => [c, await stop(c)] as const));
  for (const [c, end] of ends) if (end === 'hung') console.log(`THREE-CLIENTS hung at stop: ${c.hangReport}`);
  // The shared watchers outlive their clients (J5) for up to 10 s, and a follower waiting for a
  // watcher to start outlives its session: end them before their folders go.
  for (const r of roots) killAll([...watchersOn(r), ...writersOn(r), ...followersOn(r)]);
  await server?.stop();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  for (const r of [...roots, ...mounts]) rmSync(r, { recursive: true, force: true });
  if (Object.keys(times).length) console.log(`THREE-CLIENTS summary: ${JSON.stringify(times)}`);
}, 120_000);

/** Clients a, b and c of `remote`, their daemons started, each idle and following the server. */
async function trio(remote: string): Promise<Client[]> {
  roots.push(remote);
  const cs = await Promise.all(['a', 'b', 'c'].map((name) => makeClient(server, remote, name)));
  running.push(...cs);
  const t0 = Date.now();
  await Promise.all(cs.map((c) => start(c)));
  for (const c of cs) {
    await waitIdle(c, 60_000);
    await waitStreaming(c, 60_000);
  }
  took(`three daemons up (${remote})`, t0);
  return cs;
}

/** Everything a failure message needs: the server's processes and journal, each client's log. */
function report(remote: string, cs: Client[]): string {
  const parts = [serverReport(remote)];
  for (const c of cs) {
    const log = existsSync(join(c.e.dataDir, 'log.jsonl'))
      ? readFileSync(join(c.e.dataDir, 'log.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .slice(-25)
          .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
          .join('\n')
      : '(no log)';
    parts.push(
      `--- ${c.name}: log.jsonl (tail)\n${log}\n--- ${c.name}: daemon output (tail)\n${c.daemon?.output().slice(-2500) ?? ''}`,
    );
  }
  return parts.join('\n');
}

const contentOf = (root: string, rel: string): string | undefined => {
  try {
    return readFileSync(join(root, rel), 'utf8');
  } catch {
    return undefined;
  }
};

/** Waits until each of `files` (path → content, or null: absent) is so in every one of `dirs`. */
async function arrive(
  dirs: string[],
  files: Record<string, string | null>,
  timeoutMs: number,
  diag: () => string,
): Promise<void> {
  const missing = () =>
    dirs.flatMap((d) =>
      Object.entries(files)
        .filter(([rel, want]) => (want === null ? existsSync(join(d, rel)) : contentOf(d, rel) !== want))
        .map(([rel]) => `${d}: ${rel}`),
    );
  await waitFor(
    () => missing().length === 0,
    timeoutMs,
    () => `${missing().join(', ')}\n${diag()}`,
  );
}

/** Runs `check`; on failure, adds each client's `lipsync status --json` to the error. */
async function withStatus(cs: Client[], check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (e) {
    const st = await Promise.all(
      cs.map(async (c) => `${c.name}: ${JSON.stringify(await pairStatus(c).catch(String))}`),
    );
    (e as Error).message += `\n--- status --json:\n${st.join('\n')}`;
    throw e;
  }
}

/** The server's tree and every client's are the same, with no conflict copy. */
function expectConverged(remote: string, cs: Client[]): void {
  const ts = treeSnapshot(remote);
  for (const c of cs) expect(treeDiff(c.name, treeSnapshot(c.local), 'server', ts), `${c.name} vs server`).toBe('');
  expect([...ts.keys()].filter((k) => k.includes('conflicted copy'))).toEqual([]);
}

/** One watcher (walkwatch and journal writer), three followers each watching the journal folder only (J7), no client watching alone. */
function expectOneSharedWatcher(remote: string, cs: Client[]): void {
  const diag = () => report(remote, cs);
  expect(watchersOn(remote), diag()).toHaveLength(1);
  expect(writersOn(remote), diag()).toHaveLength(1);
  const followers = followersOn(remote);
  expect(followers, diag()).toHaveLength(3);
  const journalIno = statSync(join(remote, '.lipsync', 'journal')).ino;
  expect(watchedInodesOf(followers), 'each follower watches the journal folder, nothing in the tree').toEqual(
    followers.map(() => journalIno),
  );
  expect(loneWatchersOn(remote), diag()).toEqual([]);
  expect(watchesOf(watchersOn(remote)), 'the shared watcher holds the watches').toBeGreaterThan(0);
}

/** Waits (up to `timeoutMs`) for one shared watcher and three followers again. */
async function oneSharedWatcherAgain(remote: string, cs: Client[], timeoutMs: number): Promise<void> {
  await waitFor(
    () =>
      watchersOn(remote).length === 1 &&
      writersOn(remote).length === 1 &&
      followersOn(remote).length === 3 &&
      loneWatchersOn(remote).length === 0,
    timeoutMs,
    () => `one shared watcher and three followers\n${report(remote, cs)}`,
  );
  expectOneSharedWatcher(remote, cs);
}

describe('three daemons on one server folder share one watcher', () => {
  let remote: string;
  let cs: Client[];
  beforeAll(async () => {
    remote = makeServerDir();
    writeFileSync(join(remote, 'seed.txt'), 'on the server before the clients start\n');
    cs = await trio(remote);
  }, 180_000);

  it('a file made on A arrives on B and C; one watcher runs on the server, each follower watches only the journal folder', async () => {
    const [a, b, c] = cs as [Client, Client, Client];
    await arrive([a.local, b.local, c.local], { 'seed.txt': 'on the server before the clients start\n' }, 30_000, () =>
      report(remote, cs),
    );
    expectOneSharedWatcher(remote, cs);

    const t0 = Date.now();
    writeFileSync(join(a.local, 'from-a.txt'), 'made on A\n');
    await arrive([remote, b.local, c.local], { 'from-a.txt': 'made on A\n' }, 20_000, () => report(remote, cs));
    expect(took('a file made on A reaches the server, B and C', t0)).toBeLessThan(10);
    for (const x of [a, b, c]) await waitIdle(x);
    expectConverged(remote, cs);
    // Still one watcher: the clients' own pushes and pulls start no other.
    expectOneSharedWatcher(remote, cs);
  });

  it('kill -9 of the shared watcher: a change on the server and one on A, made right after, reach all three; one watcher again', async () => {
    const [a, b, c] = cs as [Client, Client, Client];
    const [ww] = watchersOn(remote);
    const [jw] = writersOn(remote);
    expect(ww, report(remote, cs)).toBeDefined();
    expect(jw, report(remote, cs)).toBeDefined();
    process.kill(ww!, 'SIGKILL');
    process.kill(jw!, 'SIGKILL');
    const killedAt = Date.now();
    // As a user on the server would, and on A, while nothing watches the server.
    mkdirSync(join(remote, 'made-on-server'));
    writeFileSync(join(remote, 'made-on-server', 'note.txt'), 'written on the server in the gap\n');
    writeFileSync(join(a.local, 'from-a-in-gap.txt'), 'written on A in the gap\n');
    const want = {
      'made-on-server/note.txt': 'written on the server in the gap\n',
      'from-a-in-gap.txt': 'written on A in the gap\n',
    };
    await arrive([remote, a.local, b.local, c.local], want, 60_000, () => report(remote, cs));
    took('kill -9 of the watcher: both changes everywhere', killedAt);

    await oneSharedWatcherAgain(remote, cs, 30_000);
    expect(watchersOn(remote)).not.toContain(ww);
    took('kill -9 of the watcher: one watcher again', killedAt);

    // And the clients keep following it: a change made on C afterwards reaches the others.
    const t1 = Date.now();
    writeFileSync(join(c.local, 'from-c-after.txt'), 'after the handover\n');
    await arrive([remote, a.local, b.local], { 'from-c-after.txt': 'after the handover\n' }, 20_000, () =>
      report(remote, cs),
    );
    took('after the handover: a file made on C reaches the server, A and B', t1);
    for (const x of [a, b, c]) await waitIdle(x);
    expectConverged(remote, cs);
    expectOneSharedWatcher(remote, cs);
  });
});

/** Whether some journal file (`.lipsync/journal/<gen>`) of `root` holds `text`. */
function journalHolds(root: string, text: string): boolean {
  const J = join(root, '.lipsync', 'journal');
  return readdirSync(J)
    .filter((f) => /^\d+$/.test(f))
    .some((f) => readFileSync(join(J, f)).includes(text));
}

describe.skipIf(!isRoot)('the server folder on a disk that fills up (root: tmpfs)', () => {
  /** Every content written, to check that each is still in a tree or a trash. */
  const versions = new Map<string, string>();
  const put = (root: string, rel: string, content: string) => {
    writeFileSync(join(root, rel), content);
    versions.set(sha256(content), `${root}/${rel}`);
  };
  let filler: ChildProcess | undefined;
  afterAll(() => {
    filler?.kill('SIGKILL');
  });

  it('a change made on the server while the journal cannot be written arrives once space is freed; nothing lost', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'lipsync-tmpfs-'));
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', mnt], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mount -t tmpfs failed: ${r.stderr}`);
    mounts.push(mnt);
    const remote = join(mnt, 'root');
    mkdirSync(remote);
    // Same length, so that it can be rewritten in place on a full disk.
    put(remote, 'edit.txt', 'version 1 of edit.txt\n');
    put(remote, 'gone.txt', 'deleted on the server while full\n');
    put(remote, 'moved.txt', 'renamed on the server while full\n');
    // Empty files (no blocks) with long names: deleting them makes more journal records (> 4 KiB)
    // than the slack of the journal file's last block.
    const many = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(2, '0')}-${'n'.repeat(150)}`);
    mkdirSync(join(remote, 'many'));
    for (const f of many) writeFileSync(join(remote, 'many', f), '');
    // So that deleting `many` is not over half of the files (S2 would rightly pause and ask).
    mkdirSync(join(remote, 'keep'));
    for (let i = 0; i < 50; i++) writeFileSync(join(remote, 'keep', `k${i}`), '');
    const cs = await trio(remote);
    const [a, b, c] = cs as [Client, Client, Client];
    await arrive(
      [a.local, b.local, c.local],
      { 'edit.txt': 'version 1 of edit.txt\n', [`many/${many[39]}`]: '', 'keep/k49': '' },
      30_000,
      () => report(remote, cs),
    );
    expectOneSharedWatcher(remote, cs);

    // Fill the disk (outside the synced folder) and keep it full, as a runaway writer does: the
    // filler takes every block freed, within milliseconds.
    const fill = join(mnt, 'filler');
    filler = spawn(
      'perl',
      [
        '-e',
        'open(my $f, ">>", $ARGV[0]) or die "$!"; my $b = "\\0" x 4096; while (1) { syswrite($f, $b) or select(undef, undef, undef, 0.002) }',
        fill,
      ],
      { stdio: 'ignore' },
    );
    const probe = join(mnt, 'probe');
    const blockFits = () => {
      try {
        writeFileSync(probe, Buffer.alloc(4096));
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        return false;
      } finally {
        rmSync(probe, { force: true });
      }
    };
    await waitFor(
      () => statfsSync(mnt).bavail === 0 && !blockFits(),
      10_000,
      () => 'the disk to fill',
    );
    const fullAt = Date.now();

    // Changes made on the server on a full disk: a deletion of many files (its records fill the
    // journal file's last block: the writer fails), then a rewrite in place, a rename, a deletion.
    rmSync(join(remote, 'many'), { recursive: true });
    const fd = openSync(join(remote, 'edit.txt'), 'r+');
    writeSync(fd, 'version 2 of edit.txt\n', 0);
    closeSync(fd);
    versions.set(sha256('version 2 of edit.txt\n'), `${remote}/edit.txt`);
    renameSync(join(remote, 'moved.txt'), join(remote, 'renamed.txt'));
    unlinkSync(join(remote, 'gone.txt'));
    // The disk stays full a while: the watcher cannot write, the followers give it up and try to start another.
    await sleep(15_000);
    const whileFull = report(remote, cs);
    expect(journalHolds(remote, 'renamed.txt'), `the journal did not record the rename\n${whileFull}`).toBe(false);

    filler.kill('SIGKILL');
    await new Promise((res) =>
      filler!.exitCode !== null || filler!.signalCode !== null ? res(null) : filler!.once('exit', res),
    );
    rmSync(fill);
    const freedAt = Date.now();
    const want = {
      'edit.txt': 'version 2 of edit.txt\n',
      'renamed.txt': 'renamed on the server while full\n',
      'moved.txt': null,
      'gone.txt': null,
      many: null,
    };
    await withStatus(cs, () =>
      arrive(
        [a.local, b.local, c.local],
        want,
        60_000,
        () =>
          `(while the disk was full, ${((freedAt - fullAt) / 1000).toFixed(0)} s after it filled:)\n${whileFull}\n(now, ${((Date.now() - freedAt) / 1000).toFixed(0)} s after space was freed:)\n${report(remote, cs)}`,
      ),
    );
    took('full disk: the changes made while full reach A, B and C after space is freed', freedAt);
    await oneSharedWatcherAgain(remote, cs, 30_000);
    took('full disk: one watcher again after space is freed', freedAt);
    for (const x of cs) await waitIdle(x);
    expectConverged(remote, cs);
    // Nothing lost: every version written is in a tree or a trash.
    const have = hashAll([remote, ...cs.map((x) => x.local)]);
    expect([...versions].filter(([h]) => !have.has(h)).map(([, f]) => f)).toEqual([]);
    const keeps = Array.from({ length: 50 }, (_, i) => `keep/k${i}`);
    expect(liveFiles(a.local).sort()).toEqual(['edit.txt', 'renamed.txt', ...keeps].sort());
    // The journal works again: a change made on the server now reaches all three.
    const t1 = Date.now();
    writeFileSync(join(remote, 'after.txt'), 'after the disk was freed\n');
    await arrive([a.local, b.local, c.local], { 'after.txt': 'after the disk was freed\n' }, 20_000, () =>
      report(remote, cs),
    );
    took('full disk: a later change on the server reaches A, B and C', t1);
  });
});
