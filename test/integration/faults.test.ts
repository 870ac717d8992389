/**
 * Fault injection (issue 15, item 3): real faults, each hitting one path or the
 * whole pair, and each healing by itself once the fault is removed, with no
 * `lipsync sync` from the user. Every test checks that no version was lost
 * (every content written is in a tree or a trash), that nothing outside the
 * roots changed (a sentinel folder), that the message names the path and the
 * fix, and measures the seconds from the fault's removal to "up to date"
 * (status idle, nothing pending, both trees equal), printed as FAULT-HEAL lines.
 *
 * NEEDS ROOT: the faults are real: a small tmpfs that fills up, an ext4 loop
 * image for `chattr +i`, an sshd without the capabilities that bypass
 * permission checks (setpriv), and an sshd stopped and started again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, SSHD_PATH, type SshServer } from '../harness/sshd.js';
import { BIN, requireBuild, treeSnapshot, waitFor, type Daemon } from '../support/cli.js';
import { makeSentinel, sentinelIntact, sentinelLeaks, type Sentinel } from '../support/sentinel.js';
import {
  hashAll,
  liveFiles,
  makeClient,
  pairStatus,
  sha256,
  sleep,
  start,
  stop,
  trashContents,
  treeDiff,
  waitIdle,
  type Client,
  type PairStatusJson,
} from '../support/twoway.js';

const isRoot = process.getuid?.() === 0;
const haveTools = ['setpriv', 'mkfs.ext4', 'chattr', 'mount'].every(
  (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0,
);
if (!isRoot) console.log('faults.test.ts skipped: the faults need root (mount, chattr, setpriv).');
else if (!haveTools) console.log('faults.test.ts skipped: needs setpriv, mkfs.ext4, chattr and mount.');

interface Warning {
  kind: string;
  message: string;
  fix?: string;
  files?: string[];
}

const running: Client[] = [];
const mounts: string[] = [];
const cleanups: (() => void | Promise<void>)[] = [];
const healSeconds: Record<string, number> = {};

function sh(cmd: string): string {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A tmpfs of `size` mounted on a fresh folder; returns the folder. */
function tmpfs(size: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lipsync-tmpfs-'));
  sh(`mount -t tmpfs -o size=${size},mode=0755 tmpfs '${dir}'`);
  mounts.push(dir);
  return dir;
}

/** A 32 MB ext4 image, loop-mounted on a fresh folder (tmpfs has no immutable flag). */
function ext4(): string {
  const img = join(mkdtempSync(join(tmpdir(), 'lipsync-img-')), 'fs.img');
  writeFileSync(img, '');
  sh(`truncate -s 32M '${img}' && mkfs.ext4 -q -F '${img}'`);
  const dir = mkdtempSync(join(tmpdir(), 'lipsync-ext4-'));
  sh(`mount -o loop '${img}' '${dir}'`);
  mounts.push(dir);
  cleanups.push(() => rmSync(join(img, '..'), { recursive: true, force: true }));
  return dir;
}

function pidsBelow(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(e)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const k of kids.get(p) ?? []) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

/**
 * Stops an sshd: its listener and every session it started (as a crash or `systemctl stop` would).
 * The sshd processes are killed at once; the shells below them get their hangup as after a
 * crash, and a TERM if still there, never a KILL: a shell killed outright leaves what it held
 * behind (root's ~/.bashrc here runs `pyenv rehash`, whose lock file then stalls every later
 * ssh login for a minute).
 */
async function killSshd(pid: number): Promise<void> {
  const all = [...pidsBelow(pid), pid];
  const comm = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const signal = (ps: number[], sig: NodeJS.Signals) => {
    for (const p of ps) {
      try {
        process.kill(p, sig);
      } catch {
        // gone
      }
    }
  };
  const gone = (p: number) => !existsSync(`/proc/${p}`) || /\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8'));
  signal(
    all.filter((p) => comm(p) === 'sshd'),
    'SIGKILL',
  );
  const rest = all.filter((p) => comm(p) !== 'sshd');
  await waitFor(() => rest.every(gone), 3000).catch(() => signal(rest, 'SIGTERM'));
  await waitFor(() => all.every(gone), 10_000);
}

/**
 * Starts sshd again with the test server's config (same port, keys), optionally
 * under a command prefix (setpriv); resolves once a real login works.
 */
async function respawnSshd(
  server: SshServer,
  prefix: string[] = [],
  cleanupList: (() => void | Promise<void>)[] = cleanups,
): Promise<ChildProcess> {
  const args = [...prefix, SSHD_PATH, '-D', '-e', '-f', join(server.dir, 'sshd_config')];
  const child = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  cleanupList.push(async () => {
    if (child.pid) await killSshd(child.pid);
  });
  await waitFor(
    () => spawnSync('ssh', ['-F', server.sshConfigFile, '-o', 'ConnectTimeout=2', server.alias, 'true']).status === 0,
    10_000,
    () => `sshd to accept logins again:\n${log}`,
  );
  return child;
}

/** The client's daemon run without the capabilities that bypass permission checks (like a normal user's). */
async function startDaemonWithoutDac(c: Client): Promise<Daemon> {
  const proc = spawn(
    'setpriv',
    ['--bounding-set', '-dac_override,-dac_read_search', '--inh-caps=-all', process.execPath, BIN, 'run'],
    { env: c.e.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  await waitFor(
    () => out.includes('running (pid') || proc.exitCode !== null,
    20_000,
    () => `daemon did not start:\n${out}`,
  );
  if (proc.exitCode !== null) throw new Error(`daemon exited at start:\n${out}`);
  c.daemon = {
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGINT');
      return exited;
    },
    async kill9() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  return c.daemon;
}

/** Every content written in the test, to check that each is still somewhere (a tree or a trash). */
class Versions {
  private readonly all = new Map<string, string>();
  write(file: string, content: string | Buffer, mode?: number): void {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, content, mode === undefined ? {} : { mode });
    this.all.set(sha256(content), file);
  }
  /** The contents no tree or trash of `roots` holds any more. */
  lost(roots: string[]): string[] {
    const have = hashAll(roots);
    return [...this.all].filter(([h]) => !have.has(h)).map(([, f]) => f);
  }
}

async function status(c: Client): Promise<PairStatusJson & { warnings: Warning[] }> {
  return (await pairStatus(c)) as PairStatusJson & { warnings: Warning[] };
}

/** Status idle, nothing pending, and both trees equal (outside .lipsync). */
async function upToDate(c: Client): Promise<boolean> {
  const st = await status(c);
  if (st.state !== 'idle' || st.pending !== 0) return false;
  return treeDiff('local', treeSnapshot(c.local), 'server', treeSnapshot(c.remote)) === '';
}

/** Waits for up to date; returns the seconds since `since`, and records them under `fault`. */
async function healed(c: Client, fault: string, since: number, timeoutMs = 60_000): Promise<number> {
  let last: unknown;
  await waitFor(
    async () => {
      last = await status(c);
      return upToDate(c);
    },
    timeoutMs,
    () =>
      `${fault}: up to date again; last status ${JSON.stringify(last)}\n` +
      `${treeDiff('local', treeSnapshot(c.local), 'server', treeSnapshot(c.remote))}\n${c.daemon?.output().slice(-3000) ?? ''}`,
  );
  const s = (Date.now() - since) / 1000;
  healSeconds[fault] = s;
  if (process.env.FAULTS_DEBUG) {
    const lines = readFileSync(join(c.e.dataDir, 'log.jsonl'), 'utf8').trim().split('\n');
    console.log(
      lines.map((l) => `${((JSON.parse(l) as { t: number }).t - since) / 1000} ${l.slice(0, 300)}`).join('\n'),
    );
    console.log(
      (c.daemon?.output() ?? '')
        .split('\n')
        .map((l) => l.replace(/^\[trace\] (\d+)/, (_m, t: string) => `[trace] ${(Number(t) - since) / 1000}`))
        .join('\n'),
    );
  }
  console.log(`FAULT-HEAL ${fault}: ${s.toFixed(1)} s from the fault's removal to up to date`);
  return s;
}

/** The warning naming `path`, once status shows it. */
async function warningFor(c: Client, path: string, timeoutMs = 30_000): Promise<Warning> {
  let found: Warning | undefined;
  let last: unknown;
  await waitFor(
    async () => {
      const st = await status(c);
      last = st;
      found = st.warnings.find((w) => w.files?.includes(path));
      return found !== undefined;
    },
    timeoutMs,
    () => `a warning naming ${path}; last status ${JSON.stringify(last)}\n${c.daemon?.output().slice(-3000) ?? ''}`,
  );
  return found!;
}

function checkSentinel(s: Sentinel, roots: string[]): void {
  expect(sentinelIntact(s), 'nothing outside the roots changed').toBe(true);
  for (const r of roots) expect(sentinelLeaks(s, r)).toEqual([]);
}

beforeAll(() => {
  if (isRoot && haveTools) requireBuild();
});

afterEach(async () => {
  for (const c of running.splice(0)) await stop(c);
  for (const f of cleanups.splice(0).reverse()) await f();
  for (const m of mounts.splice(0).reverse()) {
    spawnSync('sh', ['-c', `chattr -R -i '${m}' 2>/dev/null; umount -l '${m}'`]);
    rmSync(m, { recursive: true, force: true });
  }
});

afterAll(() => {
  if (Object.keys(healSeconds).length) console.log(`FAULT-HEAL summary: ${JSON.stringify(healSeconds)}`);
});

describe.skipIf(!isRoot || !haveTools)('faults hit one path, not the pair, and heal by themselves (root)', () => {
  let server: SshServer;
  beforeAll(async () => {
    server = await startSshd();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a file larger than the free space on the server: a warning naming it, the rest syncs, sent once space frees', async () => {
    const sentinel = makeSentinel();
    const mnt = tmpfs('3m');
    const remote = join(mnt, 'root');
    mkdirSync(remote);
    const c = await makeClient(server, remote, 'full');
    running.push(c);
    const v = new Versions();
    v.write(join(c.local, 'first.txt'), 'first\n');
    await start(c);
    await waitIdle(c);

    const big = randomBytes(5 * 1024 * 1024);
    v.write(join(c.local, 'big.bin'), big);
    v.write(join(c.local, 'a.txt'), 'a\n');
    v.write(join(c.local, 'z.txt'), 'z\n');
    const w = await warningFor(c, 'big.bin');
    expect(w.kind).toBe('disk-full');
    expect(w.message).toMatch(/^big\.bin \(5\.0 MiB\) does not fit on .*: the disk holding .* is full \(.* free\)\.$/);
    expect(w.fix).toMatch(/Free at least .* MiB on that disk/);
    expect(w.fix).toContain('tries this file again by itself');
    // The rest keeps syncing: the small files arrive, and so does a change made after the fault.
    await waitFor(() => existsSync(join(remote, 'a.txt')) && existsSync(join(remote, 'z.txt')), 20_000);
    v.write(join(c.local, 'later.txt'), 'later\n');
    await waitFor(
      () => existsSync(join(remote, 'later.txt')),
      20_000,
      () => 'later.txt on the server',
    );
    // Its partial is gone (it only took the space the others needed).
    const partial = join(remote, '.lipsync', 'partial');
    expect(existsSync(partial) ? readdirSync(partial) : []).toEqual([]);
    const st = await status(c);
    expect(st.state, JSON.stringify(st)).not.toBe('error');
    expect(st.lastError).toBeUndefined();
    // The same warning is shown once.
    expect(st.warnings.filter((x) => x.files?.includes('big.bin'))).toHaveLength(1);

    // The fault goes: the server's disk grows.
    sh(`mount -o remount,size=16m '${mnt}'`);
    const t0 = Date.now();
    await healed(c, 'disk full', t0);
    expect(readFileSync(join(remote, 'big.bin')).equals(big)).toBe(true);
    expect((await status(c)).warnings).toEqual([]);
    expect(v.lost([c.local, remote])).toEqual([]);
    checkSentinel(sentinel, [c.local, remote]);
  });

  it('an immutable file on the server (chattr +i): a warning naming it with the fix, healed after chattr -i', async () => {
    const sentinel = makeSentinel();
    const remote = join(ext4(), 'root');
    mkdirSync(remote);
    const c = await makeClient(server, remote, 'imm');
    running.push(c);
    const v = new Versions();
    v.write(join(c.local, 'locked.txt'), 'version 1\n');
    v.write(join(c.local, 'other.txt'), 'other 1\n');
    await start(c);
    await waitIdle(c);
    await waitFor(() => existsSync(join(remote, 'locked.txt')), 10_000);
    sh(`chattr +i '${join(remote, 'locked.txt')}'`);

    v.write(join(c.local, 'locked.txt'), 'version 2, longer\n');
    const w = await warningFor(c, 'locked.txt');
    expect(w.kind).toBe('permission-denied');
    expect(w.message).toMatch(/refused to change one file \(operation not permitted/);
    expect(w.fix).toContain('chattr -i');
    expect(w.fix).not.toMatch(/check that you can read/i);
    // Other paths go on.
    v.write(join(c.local, 'other.txt'), 'other 2\n');
    await waitFor(() => readFileSync(join(remote, 'other.txt'), 'utf8') === 'other 2\n', 20_000);
    const st = await status(c);
    expect(st.state).not.toBe('error');
    expect(readFileSync(join(remote, 'locked.txt'), 'utf8')).toBe('version 1\n');

    sh(`chattr -i '${join(remote, 'locked.txt')}'`);
    const t0 = Date.now();
    await healed(c, 'immutable file', t0);
    expect(readFileSync(join(remote, 'locked.txt'), 'utf8')).toBe('version 2, longer\n');
    expect(trashContents(remote, 'locked.txt')).toContain('version 1\n');
    expect((await status(c)).warnings).toEqual([]);
    expect(v.lost([c.local, remote])).toEqual([]);
    checkSentinel(sentinel, [c.local, remote]);
  });

  it('a damaged state database is moved aside and rebuilt by comparing both sides; nothing is deleted', async () => {
    const sentinel = makeSentinel();
    const remote = mkdtempSync(join(tmpdir(), 'lipsync-srv-'));
    const c = await makeClient(server, remote, 'db');
    running.push(c);
    const v = new Versions();
    v.write(join(c.local, 'same.txt'), 'same\n');
    // (Overwritten below on both sides by the test itself: not a version lipsync must keep.)
    writeFileSync(join(c.local, 'both.txt'), 'both, original\n');
    v.write(join(c.local, 'gone-here.txt'), 'deleted here while stopped\n');
    await start(c);
    await waitIdle(c);
    await waitFor(() => existsSync(join(remote, 'gone-here.txt')), 10_000);
    await stop(c);

    const dbFile = join(c.e.dataDir, 'state', `${c.pair}.db`);
    expect(statSync(dbFile).mode & 0o777).toBe(0o600);
    for (const ext of ['', '-wal', '-shm']) rmSync(dbFile + ext, { force: true });
    writeFileSync(dbFile, randomBytes(64 * 1024));
    // Meanwhile both sides changed: the database's knowledge is gone, so nothing may be deleted.
    v.write(join(c.local, 'both.txt'), 'both, changed here\n');
    v.write(join(remote, 'both.txt'), 'both, changed on the server\n');
    v.write(join(c.local, 'only-here.txt'), 'only here\n');
    v.write(join(remote, 'only-there.txt'), 'only there\n');
    unlinkSync(join(c.local, 'gone-here.txt'));

    const t0 = Date.now();
    await start(c);
    await healed(c, 'damaged state database', t0);
    const st = await status(c);
    const w = st.warnings.find((x) => /state database/.test(x.message));
    expect(w?.message).toMatch(
      /damaged \(file is not a database\).*moved it aside to .*\.damaged-\d{8}T\d{6}.*nothing was deleted/,
    );
    expect(w?.fix).toContain('lipsync conflicts');
    const aside = readdirSync(join(c.e.dataDir, 'state')).filter((f) => f.startsWith(`${c.pair}.db.damaged-`));
    expect(aside).toHaveLength(1);
    expect(statSync(dbFile).mode & 0o777).toBe(0o600);
    // Nothing deleted: the file deleted here came back from the server; both versions of both.txt kept.
    expect(readFileSync(join(c.local, 'gone-here.txt'), 'utf8')).toBe('deleted here while stopped\n');
    expect(readFileSync(join(remote, 'only-here.txt'), 'utf8')).toBe('only here\n');
    expect(readFileSync(join(c.local, 'only-there.txt'), 'utf8')).toBe('only there\n');
    const copies = liveFiles(c.local).filter((f) => f.startsWith('both (conflicted copy'));
    expect(copies).toHaveLength(1);
    expect(st.state).toBe('idle');
    expect(v.lost([c.local, remote])).toEqual([]);
    checkSentinel(sentinel, [c.local, remote]);
  });

  it('sshd stopped: an error naming the real port; reconnected within seconds once sshd is back', async () => {
    const sentinel = makeSentinel();
    const remote = mkdtempSync(join(tmpdir(), 'lipsync-srv-'));
    // Its own server: this one is stopped and started again.
    const own = await startSshd();
    cleanups.push(() => own.stop());
    const c = await makeClient(own, remote, 'down');
    running.push(c);
    const v = new Versions();
    v.write(join(c.local, 'before.txt'), 'before\n');
    await start(c);
    await waitIdle(c);

    await killSshd(own.pid);
    v.write(join(c.local, 'during.txt'), 'written while the server was down\n');
    let st = await status(c);
    await waitFor(
      async () => (st = await status(c)).state === 'error',
      30_000,
      () => `an error state; last ${JSON.stringify(st)}`,
    );
    const err = (st.lastError ?? st.reason) as Warning;
    expect(err.kind).toBe('host-unreachable');
    expect(err.fix).toContain(`port ${own.port}`);
    expect(own.port).not.toBe(22);
    // Stays down a while: the retries must not back off to tens of seconds.
    await sleep(12_000);

    await respawnSshd(own);
    const t0 = Date.now();
    const s = await healed(c, 'sshd restarted', t0);
    expect(s).toBeLessThan(15);
    expect(readFileSync(join(remote, 'during.txt'), 'utf8')).toBe('written while the server was down\n');
    expect(v.lost([c.local, remote])).toEqual([]);
    checkSentinel(sentinel, [c.local, remote]);
  });

  it('a file unreadable here (a daemon without CAP_DAC_READ_SEARCH): a per-path warning, sent after chmod', async () => {
    const sentinel = makeSentinel();
    const remote = mkdtempSync(join(tmpdir(), 'lipsync-srv-'));
    const c = await makeClient(server, remote, 'unread');
    running.push(c);
    const v = new Versions();
    v.write(join(c.local, 'fine.txt'), 'fine\n');
    await startDaemonWithoutDac(c);
    await waitIdle(c);

    // Unreadable from the start (mode 0, set when it is created).
    v.write(join(c.local, 'secret.txt'), 'not readable yet\n', 0o000);
    expect(statSync(join(c.local, 'secret.txt')).mode & 0o777).toBe(0);
    const w = await warningFor(c, 'secret.txt');
    expect(w.kind).toBe('partial-transfer');
    expect(w.message).toMatch(/could not be sent \(no permission to read them here\)/);
    expect(w.fix).toMatch(/read the files listed/);
    v.write(join(c.local, 'other.txt'), 'other\n');
    await waitFor(() => existsSync(join(remote, 'other.txt')), 20_000);
    const st = await status(c);
    expect(st.state).not.toBe('error');
    expect(existsSync(join(remote, 'secret.txt'))).toBe(false);

    chmodSync(join(c.local, 'secret.txt'), 0o644);
    const t0 = Date.now();
    await healed(c, 'file unreadable here', t0);
    expect(readFileSync(join(remote, 'secret.txt'), 'utf8')).toBe('not readable yet\n');
    expect((await status(c)).warnings).toEqual([]);
    expect(v.lost([c.local, remote])).toEqual([]);
    checkSentinel(sentinel, [c.local, remote]);
  });

  describe('permissions refused for real (an sshd without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH)', () => {
    let own: SshServer;
    const mine: (() => void | Promise<void>)[] = [];
    beforeAll(async () => {
      own = await startSshd();
      await killSshd(own.pid);
      const caps = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', '--inh-caps=-all'];
      await respawnSshd(own, caps, mine);
    });
    afterAll(async () => {
      for (const f of mine.splice(0).reverse()) await f();
      await own?.stop();
    });

    it('a new file in a read-only server folder: a per-path warning, sent by itself after chmod u+w', async () => {
      const sentinel = makeSentinel();
      const remote = mkdtempSync(join(tmpdir(), 'lipsync-srv-'));
      const c = await makeClient(own, remote, 'ro');
      running.push(c);
      const v = new Versions();
      v.write(join(c.local, 'ro', 'old.txt'), 'old\n');
      v.write(join(c.local, 'keep', 'x.txt'), 'x\n');
      await start(c);
      await waitIdle(c);
      await waitFor(() => existsSync(join(remote, 'ro', 'old.txt')), 10_000);
      chmodSync(join(remote, 'ro'), 0o555);

      v.write(join(c.local, 'ro', 'new.txt'), 'new, blocked\n');
      const w = await warningFor(c, 'ro/new.txt');
      expect(w.kind).toBe('permission-denied');
      expect(w.message).toMatch(/No permission to write one file on /);
      expect(w.fix).toContain('chmod u+w');
      // The pair is not in error, and other paths sync.
      v.write(join(c.local, 'keep', 'y.txt'), 'y\n');
      await waitFor(() => existsSync(join(remote, 'keep', 'y.txt')), 20_000);
      let st = await status(c);
      expect(st.state).not.toBe('error');
      expect(st.lastError).toBeUndefined();
      // The same warning is not repeated while the failure repeats (retries on a back-off).
      await sleep(6000);
      st = await status(c);
      expect(st.warnings.filter((x) => x.files?.includes('ro/new.txt'))).toHaveLength(1);
      const logged = readFileSync(join(c.e.dataDir, 'log.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('ro/new.txt') && l.includes('"warn"'));
      expect(logged).toHaveLength(1);

      chmodSync(join(remote, 'ro'), 0o755);
      const t0 = Date.now();
      await healed(c, 'read-only server folder (new file)', t0);
      expect(readFileSync(join(remote, 'ro', 'new.txt'), 'utf8')).toBe('new, blocked\n');
      expect((await status(c)).warnings).toEqual([]);
      expect(v.lost([c.local, remote])).toEqual([]);
      checkSentinel(sentinel, [c.local, remote]);
    });

    it('a deletion blocked by a read-only server folder: a per-path warning, not a pair error; done after chmod', async () => {
      const sentinel = makeSentinel();
      const remote = mkdtempSync(join(tmpdir(), 'lipsync-srv-'));
      const c = await makeClient(own, remote, 'rodel');
      running.push(c);
      const v = new Versions();
      v.write(join(c.local, 'ro', 'del.txt'), 'to delete\n');
      await start(c);
      await waitIdle(c);
      await waitFor(() => existsSync(join(remote, 'ro', 'del.txt')), 10_000);
      chmodSync(join(remote, 'ro'), 0o555);

      unlinkSync(join(c.local, 'ro', 'del.txt'));
      const w = await warningFor(c, 'ro/del.txt');
      expect(w.kind).toBe('permission-denied');
      expect(w.fix).toContain('chmod u+w');
      const st = await status(c);
      expect(st.state).not.toBe('error');
      expect(st.lastError).toBeUndefined();
      expect(existsSync(join(remote, 'ro', 'del.txt'))).toBe(true);

      chmodSync(join(remote, 'ro'), 0o755);
      const t0 = Date.now();
      await healed(c, 'read-only server folder (deletion)', t0);
      expect(existsSync(join(remote, 'ro', 'del.txt'))).toBe(false);
      expect(trashContents(remote, 'ro/del.txt')).toEqual(['to delete\n']);
      expect((await status(c)).warnings).toEqual([]);
      expect(v.lost([c.local, remote])).toEqual([]);
      checkSentinel(sentinel, [c.local, remote]);
    });
  });
});
