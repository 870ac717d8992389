/**
 * Acceptance of "The engine, part 1": the real CLI and daemon, real inotifywait,
 * real rsync over a real sshd on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  readdirSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { startSshd, type SshServer } from '../harness/sshd.js';
import {
  cli,
  listFiles,
  makeCliEnv,
  readLogRecords,
  requireBuild,
  startDaemon,
  treeSnapshot,
  waitFor,
  type CliEnv,
} from '../support/cli.js';

let server: SshServer;

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  await server?.stop();
});

interface Setup {
  e: CliEnv;
  local: string;
  remote: string;
}

async function setupPair(opts: { excludes?: string[]; rescan?: number } = {}): Promise<Setup> {
  const e = makeCliEnv({ sshConfigFile: server.sshConfigFile, debounceMs: 50 });
  const local = join(e.dir, 'local');
  const remote = join(e.dir, 'server');
  mkdirSync(local);
  mkdirSync(remote);
  // These are the acceptance tests of the send direction; two-way has its own (two-way.test.ts).
  const args = ['add', local, `${server.alias}:${remote}`, '--id', 'docs', '--direction', 'send-only'];
  for (const x of opts.excludes ?? []) args.push('--exclude', x);
  if (opts.rescan) args.push('--rescan', String(opts.rescan));
  const r = await cli(e, args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return { e, local, remote };
}

const pushedPaths = (e: CliEnv, since: number) =>
  readLogRecords(e)
    .filter((r) => r.t >= since && r.event === 'push')
    .flatMap((r) => r.paths ?? []);

/** Command lines of live processes that mention `text` (e.g. a pair's local root). */
function processesMentioning(text: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(text)) out.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const trashFiles = (remote: string) => listFiles(join(remote, '.lipsync', 'trash'));

/** The file in the server's trash whose path ends with `rel`, read. */
function trashContent(remote: string, rel: string): string[] {
  return trashFiles(remote)
    .filter((f) => f.endsWith('/' + rel))
    .map((f) => readFileSync(join(remote, '.lipsync', 'trash', f), 'utf8'));
}

describe('daemon pushes local changes to the server', () => {
  it('sends new, modified, deleted and renamed files, and moves a renamed directory of 1,000 files without re-sending it', async () => {
    const { e, local, remote } = await setupPair();
    writeFileSync(join(local, 'keep.txt'), 'v1');
    writeFileSync(join(local, 'gone.txt'), 'to be deleted');
    writeFileSync(join(local, 'old-name.txt'), 'renamed content');
    mkdirSync(join(local, 'photos'));
    for (let i = 0; i < 1000; i++) writeFileSync(join(local, 'photos', `img-${i}.jpg`), `photo ${i} `.repeat(20));

    const d = await startDaemon(e);
    try {
      await waitFor(
        () => existsSync(join(remote, 'photos', 'img-999.jpg')) && existsSync(join(remote, 'keep.txt')),
        30_000,
        () => d.output(),
      );
      await waitFor(async () => (await cli(e, ['status', '--json'])).stdout.includes('"state": "idle"'), 20_000);

      const since = Date.now();
      writeFileSync(join(local, 'new.txt'), 'brand new');
      writeFileSync(join(local, 'keep.txt'), 'v2 is longer');
      unlinkSync(join(local, 'gone.txt'));
      renameSync(join(local, 'old-name.txt'), join(local, 'new-name.txt'));
      renameSync(join(local, 'photos'), join(local, 'pictures'));

      await waitFor(
        () =>
          existsSync(join(remote, 'new.txt')) &&
          readFileSync(join(remote, 'keep.txt'), 'utf8') === 'v2 is longer' &&
          !existsSync(join(remote, 'gone.txt')) &&
          existsSync(join(remote, 'new-name.txt')) &&
          existsSync(join(remote, 'pictures', 'img-0.jpg')) &&
          !existsSync(join(remote, 'photos')),
        20_000,
        () => `changes on the server\n${d.output()}`,
      );
      await waitFor(async () => (await cli(e, ['status', '--json'])).stdout.includes('"state": "idle"'), 20_000);
      expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));

      // The renamed directory and file were moved on the server, not sent again.
      const records = readLogRecords(e).filter((r) => r.t >= since);
      const moves = records.filter((r) => r.event === 'rename').map((r) => [r.from, r.to]);
      expect(moves).toContainEqual(['photos', 'pictures']);
      expect(moves).toContainEqual(['old-name.txt', 'new-name.txt']);
      const sent = pushedPaths(e, since);
      expect(sent.filter((p) => p.startsWith('pictures/') || p.startsWith('photos/'))).toEqual([]);
      expect(sent).not.toContain('new-name.txt');
      expect(sent.sort()).toEqual(['keep.txt', 'new.txt']);

      // Deleted and overwritten versions are in the server's trash.
      expect(trashContent(remote, 'gone.txt')).toEqual(['to be deleted']);
      expect(trashContent(remote, 'keep.txt')).toEqual(['v1']);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('after a restart pushes exactly what changed while it was stopped, and nothing else', async () => {
    const { e, local, remote } = await setupPair();
    for (let i = 0; i < 50; i++) writeFileSync(join(local, `f${i}.txt`), `file ${i}`);
    mkdirSync(join(local, 'sub'));
    writeFileSync(join(local, 'sub', 'inner.txt'), 'inner');
    let d = await startDaemon(e);
    await waitFor(() => existsSync(join(remote, 'sub', 'inner.txt')) && existsSync(join(remote, 'f49.txt')), 20_000);
    await waitFor(async () => (await cli(e, ['status', '--json'])).stdout.includes('"state": "idle"'), 20_000);
    expect(await d.stop()).toBe(0);

    // Changes while nobody watches.
    writeFileSync(join(local, 'created.txt'), 'created offline');
    writeFileSync(join(local, 'f3.txt'), 'modified offline, longer');
    unlinkSync(join(local, 'f7.txt'));
    rmSync(join(local, 'sub'), { recursive: true });

    const since = Date.now();
    d = await startDaemon(e);
    try {
      await waitFor(
        () =>
          existsSync(join(remote, 'created.txt')) &&
          !existsSync(join(remote, 'f7.txt')) &&
          !existsSync(join(remote, 'sub')),
        20_000,
        () => d.output(),
      );
      await waitFor(async () => (await cli(e, ['status', '--json'])).stdout.includes('"state": "idle"'), 20_000);
      expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
      expect(pushedPaths(e, since).sort()).toEqual(['created.txt', 'f3.txt']);
      const deleted = readLogRecords(e)
        .filter((r) => r.t >= since && r.event === 'delete')
        .flatMap((r) => r.paths ?? []);
      expect(deleted.sort()).toEqual(['f7.txt', 'sub', 'sub/inner.txt']);
      expect(trashContent(remote, 'sub/inner.txt')).toEqual(['inner']);
    } finally {
      await d.stop();
    }
  });

  it('recovers from kill -9 during a large push: the server ends identical, with no partial files visible', async () => {
    const { e, local, remote } = await setupPair();
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    for (let i = 0; i < 40; i++) {
      big.writeUInt32LE(i, 0);
      writeFileSync(join(local, `big-${i}.bin`), big);
    }
    // Slow the transfer so the kill lands in the middle of it.
    const r = await cli(e, ['pause']);
    expect(r.code).toBe(0);
    const cfgFile = join(e.configDir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    cfg.pairs[0].bwLimitKBps = 20_000;
    cfg.pairs[0].paused = false;
    writeFileSync(cfgFile, JSON.stringify(cfg));

    let d = await startDaemon(e);
    await waitFor(
      () => readdirSync(remote).some((n) => n.startsWith('big-')) || existsSync(join(remote, '.lipsync')),
      20_000,
    );
    await waitFor(
      () =>
        readdirSync(join(remote, '.lipsync')).some((n) => n.startsWith('.big-')) ||
        readdirSync(remote).filter((n) => n.startsWith('big-')).length > 3,
      20_000,
    );
    await d.kill9();
    // The kernel ends the dead daemon's rsync and inotifywait children (parent-death signal).
    await waitFor(
      () => processesMentioning(local).length === 0,
      5000,
      () => `orphans: ${processesMentioning(local).join('\n')}`,
    );
    const partialVisible = readdirSync(remote).filter((n) => !n.startsWith('big-') && n !== '.lipsync');
    expect(partialVisible).toEqual([]);

    cfg.pairs[0].bwLimitKBps = 0;
    writeFileSync(cfgFile, JSON.stringify(cfg));
    d = await startDaemon(e);
    try {
      await waitFor(
        async () => (await cli(e, ['status', '--json'])).stdout.includes('"state": "idle"'),
        60_000,
        () => d.output(),
      );
      await waitFor(() => readdirSync(remote).filter((n) => n.startsWith('big-')).length === 40, 30_000);
      expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
      // Nothing outside .lipsync/ but the real files.
      expect(readdirSync(remote).filter((n) => !/^big-\d+\.bin$/.test(n) && n !== '.lipsync')).toEqual([]);
    } finally {
      await d.stop();
    }
  });

  it('sends strange names byte-exact and never runs them as commands', async () => {
    // A name cannot hold a slash, so the injected command would touch a relative path: in the
    // remote command's working directory (the home directory), the remote root, or here.
    const markerName = `lipsync-pwned-${process.pid}-${Date.now()}`;
    const marker = markerName;
    const markerPlaces = () => [join(homedir(), markerName), join(process.cwd(), markerName)];
    const { e, local, remote } = await setupPair();
    const names = [
      'with space.txt',
      'new\nline.txt',
      'back\\slash.txt',
      '-rf',
      '--delete',
      `$(touch ${marker})`,
      `'; touch ${marker}; '`,
      '"double" quotes',
      'ü'.repeat(100), // 200 bytes of UTF-8
      'caf\u00e9', // NFC
      'cafe\u0301', // NFD
      'tab\there',
      '`touch x`',
    ];
    for (const n of names) writeFileSync(join(local, n), `content of ${JSON.stringify(n)}`);
    mkdirSync(join(local, 'dir $(x) \n'));
    writeFileSync(join(local, 'dir $(x) \n', `'; touch ${marker}; '`), 'nested');

    const r = await cli(e, ['sync']);
    expect(r.stderr + r.stdout).toContain('docs: synced');
    expect(r.code).toBe(0);
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
    for (const n of names) expect(readdirSync(remote)).toContain(n);

    // Renames and deletes of strange names go through remote commands: still no injection.
    renameSync(join(local, `$(touch ${marker})`), join(local, `'; touch ${marker}; ' moved`));
    renameSync(join(local, 'dir $(x) \n'), join(local, '-dir $(x) moved'));
    unlinkSync(join(local, 'new\nline.txt'));
    const r2 = await cli(e, ['sync']);
    expect(r2.code).toBe(0);
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
    for (const place of [...markerPlaces(), join(remote, markerName), join(local, markerName)])
      expect(existsSync(place)).toBe(false);
    expect(existsSync(join(remote, 'x'))).toBe(false);
    expect(existsSync(join(homedir(), 'x'))).toBe(false);
  });
});

/**
 * The daemon's watcher run in its own user namespace with a watch limit of 2, a real ENOSPC
 * from the kernel: inotifywait (LIPSYNC_WALKWATCH=0, LIPSYNC_INOTIFYWAIT), or walkwatch's
 * perl (a `perl` wrapper first on the daemon's PATH).
 */
function limitedWatcherEnv(dir: string, backend: 'walkwatch' | 'inotifywait'): NodeJS.ProcessEnv {
  const real =
    backend === 'walkwatch'
      ? execFileSync('sh', ['-c', 'command -v perl'], { encoding: 'utf8' }).trim()
      : 'inotifywait';
  const wrapperDir = join(dir, `limited-${backend}`);
  mkdirSync(wrapperDir);
  const wrapper = join(wrapperDir, backend === 'walkwatch' ? 'perl' : 'inotifywait');
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec unshare -Ur sh -c 'echo 2 > /proc/sys/user/max_inotify_watches && exec ${real} "$@"' sh "$@"\n`,
    { mode: 0o755 },
  );
  return backend === 'walkwatch'
    ? { PATH: `${wrapperDir}:${process.env.PATH ?? ''}` }
    : { LIPSYNC_WALKWATCH: '0', LIPSYNC_INOTIFYWAIT: wrapper };
}

describe.each(['walkwatch', 'inotifywait'] as const)('watch limit (%s)', (backend) => {
  it('reports degraded with the sysctl fix and still syncs through rescans', async () => {
    const { e, local, remote } = await setupPair({ rescan: 1 });
    for (const dir of ['a', 'b', 'c', 'd']) mkdirSync(join(local, dir));
    const d = await startDaemon(e, limitedWatcherEnv(e.dir, backend));
    try {
      await waitFor(
        async () => (await cli(e, ['status', '--json'])).stdout.includes('"state": "degraded"'),
        20_000,
        () => d.output(),
      );
      const st = JSON.parse((await cli(e, ['status', '--json'])).stdout);
      const pair = st.pairs[0];
      expect(pair.reason.kind).toBe('watch-limit');
      expect(pair.reason.fix).toMatch(/fs\.inotify\.max_user_watches=\d+/);
      expect(pair.reason.fix).toMatch(/sysctl/);
      // A rescan (every second here) shows the pair as syncing for its duration: the text
      // status is read until it is between two of them.
      let text = '';
      await waitFor(
        async () => (text = (await cli(e, ['status'])).stdout).includes('degraded'),
        20_000,
        () => `status text says degraded; last: ${text}`,
      );
      expect(text).toMatch(/fix: .*max_user_watches/);

      writeFileSync(join(local, 'c', 'found-by-rescan.txt'), 'hello');
      await waitFor(
        () => existsSync(join(remote, 'c', 'found-by-rescan.txt')),
        20_000,
        () => d.output(),
      );
      expect(readFileSync(join(remote, 'c', 'found-by-rescan.txt'), 'utf8')).toBe('hello');
    } finally {
      await d.stop();
    }
  });
});

describe('one daemon per user', () => {
  it('refuses a second run, and the other commands talk to the running daemon', async () => {
    const { e, local, remote } = await setupPair();
    const d = await startDaemon(e);
    try {
      const second = await cli(e, ['run']);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toMatch(/already running/);
      const st = await cli(e, ['status']);
      expect(st.stdout).toMatch(/daemon: running \(pid \d+\)/);

      await waitFor(async () => (await cli(e, ['status', '--json'])).stdout.includes('"state": "idle"'), 20_000);
      const p = await cli(e, ['pause', 'docs', '--for', '30m']);
      expect(p.code).toBe(0);
      writeFileSync(join(local, 'while-paused.txt'), 'x');
      await new Promise((r) => setTimeout(r, 700));
      expect(existsSync(join(remote, 'while-paused.txt'))).toBe(false);
      const js = JSON.parse((await cli(e, ['status', '--json'])).stdout);
      expect(js.pairs[0].state).toBe('paused');
      expect(js.pairs[0].pausedUntil).toBeGreaterThan(Date.now() + 25 * 60_000);

      expect((await cli(e, ['resume'])).code).toBe(0);
      await waitFor(() => existsSync(join(remote, 'while-paused.txt')), 10_000);

      writeFileSync(join(local, 'via-sync.txt'), 'y');
      const s = await cli(e, ['sync', 'docs']);
      expect(s.code).toBe(0);
      expect(existsSync(join(remote, 'via-sync.txt'))).toBe(true);
      const log = await cli(e, ['log', '--lines', '200']);
      expect(log.stdout).toMatch(/sent \d+ files?/);
    } finally {
      expect(await d.stop()).toBe(0);
    }
    // Stopped cleanly: no daemon answers, the lock is released.
    expect(existsSync(join(e.dataDir, 'daemon.pid'))).toBe(false);
    expect((await cli(e, ['status'])).stdout).toContain('daemon: not running');
  });
});
