// Real OpenSSH server for integration tests: nothing fakes ssh.
//
// startSshd() runs /usr/sbin/sshd on 127.0.0.1 with a free port, in a fresh
// temp dir holding its own host key, an authorized client key, a second
// client key that is NOT authorized, a known_hosts file and a client ssh
// config. Host key checking stays on everywhere.
//
// Works as root (sshd needs /run/sshd for privilege separation) and as an
// ordinary user (sshd then runs unprivileged and can only log in that user).
//
// The `password` option (ROOT ONLY) also lets one extra system user log in
// with a password; see StartSshdOptions.password.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD_PATH = '/usr/sbin/sshd';
export const SSH_ALIAS = 'lipsync-test';

export interface StartSshdOptions {
  /**
   * Sessions get a PATH holding `sh` and coreutils but no `rsync`, to test
   * "rsync missing on the remote" for real.
   */
  noRsync?: boolean;
  /** How long to wait for sshd to accept a real ssh login. Default 10 s. */
  readyTimeoutMs?: number;
  /**
   * NEEDS ROOT. Lets `user` log in with `password` (password and
   * keyboard-interactive authentication for that user only, in a
   * `Match User` block; everyone else stays key-only). The system user is
   * created when missing (`useradd -m -s /bin/sh`) and its password set with
   * `chpasswd`; sshd runs with `UsePAM no`, so it checks /etc/shadow itself.
   * That user's keys are read from its own `~/.ssh/authorized_keys`.
   * The name must start with `lipsync-` (a test-only account, e.g.
   * `lipsync-pw-test`): the harness refuses to touch any other account.
   * stop() leaves the user in place; remove it with removePasswordUser().
   * startSshd() checks that a real password login works before returning.
   */
  password?: { user: string; password: string };
}

export interface PasswordUser {
  user: string;
  password: string;
  /** The user's home directory (from getent passwd). */
  home: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SshServer {
  host: '127.0.0.1';
  port: number;
  /** The current user: the only one sshd lets in. */
  user: string;
  alias: typeof SSH_ALIAS;
  /** Temp dir holding keys, configs and logs; removed by stop(). */
  dir: string;
  /** Private key authorized on the server. */
  identityFile: string;
  /** Private key the server does NOT accept. */
  wrongIdentityFile: string;
  knownHostsFile: string;
  /** Client config with `Host lipsync-test` and `Host 127.0.0.1` blocks. */
  sshConfigFile: string;
  /** The extra user that may log in with a password (the `password` option), else undefined. */
  passwordUser: PasswordUser | undefined;
  pid: number;
  /** ssh args to reach the server, e.g. ['-F', cfg, 'lipsync-test']; append a command. */
  sshArgs: string[];
  /** Runs `ssh -n -F cfg lipsync-test -- command` (for test assertions); never rejects. */
  exec(command: string): Promise<ExecResult>;
  /** sshd's stderr log so far (LogLevel VERBOSE), for failure messages. */
  log(): string;
  /** Kills sshd and its connection processes, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Tools available on the remote PATH in `noRsync` mode (if they exist on this system). */
const NO_RSYNC_TOOLS = `
  sh dash bash env true false test [ echo printf sleep id whoami uname date nproc
  cat mv cp ln rm rmdir mkdir touch chmod ls find stat du df readlink realpath dirname basename mktemp sync
  head tail sort uniq wc tr cut tee xargs grep sed awk sha256sum md5sum
`
  .trim()
  .split(/\s+/);

const MAX_LOG_CHARS = 256 * 1024;

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: could not read the bound port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** A fresh, empty directory under os.tmpdir(). */
export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`));
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        let code = 0;
        if (error) {
          code = typeof error.code === 'number' ? error.code : 1;
          if (error.killed) stderr += `\n[${cmd} killed after ${timeoutMs} ms]`;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Like run(), with `input` on stdin (used for secrets: never on a command line). */
function runWithInput(cmd: string, args: string[], input: string, env?: NodeJS.ProcessEnv): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.on('error', () => {
      // The child exited without reading its input; its exit code tells.
    });
    child.stdin.end(input);
  });
}

async function runOrThrow(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function keygen(file: string, comment: string): Promise<void> {
  await runOrThrow('ssh-keygen', ['-t', 'ed25519', '-N', '', '-q', '-C', comment, '-f', file]);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** True while `pid` runs; a zombie (exited, not yet reaped) counts as gone. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * All live descendants of `pid`, read from /proc: sshd's per-connection
 * processes and the commands they run (each in its own session, so neither
 * a process group kill nor sshd's own exit would end them).
 */
function descendantPids(pid: number): number[] {
  const childrenOf = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state ppid ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      const ppid = Number(fields[1]);
      const list = childrenOf.get(ppid) ?? [];
      list.push(Number(entry));
      childrenOf.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const result: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of childrenOf.get(next) ?? []) {
      result.push(child);
      queue.push(child);
    }
  }
  return result;
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

// Servers not stopped yet (pid -> temp dir): killed if the test process ends
// without stop(), whether it exits normally or is killed by a signal (vitest
// ends its fork workers with SIGTERM, which skips 'exit' handlers).
const live = new Map<number, string>();
const CLEANUP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
let cleanupInstalled = false;

function killLiveServersSync(): void {
  for (const [pid, dir] of live) {
    for (const child of descendantPids(pid)) killQuietly(child, 'SIGKILL');
    killQuietly(pid, 'SIGKILL');
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort while dying.
    }
  }
  live.clear();
}

function onFatalSignal(signal: NodeJS.Signals): void {
  killLiveServersSync();
  for (const s of CLEANUP_SIGNALS) process.off(s, onFatalSignal);
  // Let the signal do what it would have done without us.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killLiveServersSync);
  for (const s of CLEANUP_SIGNALS) process.on(s, onFatalSignal);
}

function sshdConfig(o: {
  port: number;
  dir: string;
  user: string;
  authorizedKeys: string;
  pathOverride?: string | undefined;
  passwordUser?: string | undefined;
}): string {
  const lines = [
    `ListenAddress 127.0.0.1:${o.port}`,
    `HostKey ${join(o.dir, 'host_ed25519')}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    `AllowUsers ${o.passwordUser && o.passwordUser !== o.user ? `${o.user} ${o.passwordUser}` : o.user}`,
    'LogLevel VERBOSE',
    'MaxSessions 50',
    'MaxStartups 100:30:200',
    'MaxAuthTries 10',
    'X11Forwarding no',
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
  ];
  // SetEnv comes after sshd's own default PATH, so it replaces it in every session.
  if (o.pathOverride !== undefined) lines.push(`SetEnv PATH=${o.pathOverride}`);
  // Match blocks last: everything after a Match line belongs to it.
  if (o.passwordUser !== undefined) {
    lines.push(
      `Match User ${o.passwordUser}`,
      '  PasswordAuthentication yes',
      '  KbdInteractiveAuthentication yes',
      '  AuthorizedKeysFile .ssh/authorized_keys',
    );
  }
  return lines.join('\n') + '\n';
}

function clientConfig(o: { port: number; user: string; identityFile: string; knownHostsFile: string }): string {
  const settings = [
    'HostName 127.0.0.1',
    `Port ${o.port}`,
    `User ${o.user}`,
    `IdentityFile ${o.identityFile}`,
    'IdentitiesOnly yes',
    `UserKnownHostsFile ${o.knownHostsFile}`,
    'GlobalKnownHostsFile /dev/null',
    'StrictHostKeyChecking yes',
    'BatchMode yes',
    'ConnectTimeout 10',
  ].map((line) => `  ${line}`);
  return [`Host ${SSH_ALIAS}`, ...settings, '', 'Host 127.0.0.1', ...settings, ''].join('\n');
}

/** Test-only account names the `password` option may create and change. */
const PASSWORD_USER_RE = /^lipsync-[a-z0-9-]{1,24}$/;

/** Creates the password user when missing and sets its password (root only). */
async function ensurePasswordUser(o: { user: string; password: string }): Promise<PasswordUser> {
  if (process.getuid?.() !== 0) {
    throw new Error('startSshd({ password }) needs root: it creates a system user and sets its password');
  }
  if (!PASSWORD_USER_RE.test(o.user)) {
    throw new Error(
      `startSshd({ password }): refusing user ${JSON.stringify(o.user)} (must match ${PASSWORD_USER_RE})`,
    );
  }
  if (o.password === '' || /[\n\r]/.test(o.password)) {
    throw new Error('startSshd({ password }): the password must be one non-empty line');
  }
  let ent = await run('getent', ['passwd', o.user]);
  if (ent.code !== 0) {
    const added = await run('useradd', ['-m', '-s', '/bin/sh', o.user]);
    // 9: created meanwhile by another test process.
    if (added.code !== 0 && added.code !== 9)
      throw new Error(`useradd ${o.user} failed (${added.code}): ${added.stderr}`);
    ent = await run('getent', ['passwd', o.user]);
  }
  const home = ent.stdout.trim().split(':')[5];
  if (ent.code !== 0 || !home) throw new Error(`no passwd entry for ${o.user}: ${ent.stderr}`);
  // chpasswd reads `user:password` lines on stdin: the password is never on a command line.
  const set = await runWithInput('chpasswd', [], `${o.user}:${o.password}\n`);
  if (set.code !== 0) throw new Error(`chpasswd failed (${set.code}): ${set.stderr}`);
  return { user: o.user, password: o.password, home };
}

/**
 * Deletes a user created by the `password` option, with its home (`userdel -r`).
 * Root only; refuses names the harness would not have created.
 */
export async function removePasswordUser(user: string): Promise<void> {
  if (!PASSWORD_USER_RE.test(user)) throw new Error(`refusing to remove user ${JSON.stringify(user)}`);
  if ((await run('getent', ['passwd', user])).code !== 0) return;
  await runOrThrow('userdel', ['-r', user]);
}

/**
 * A real password login (`id -un`) as `pw.user`: ssh reads the password from
 * an SSH_ASKPASS script that prints an environment variable; public keys are
 * not offered; host key checking stays strict.
 */
export async function passwordLogin(
  server: { port: number; knownHostsFile: string; dir: string },
  user: string,
  password: string,
  command = 'id -un',
): Promise<ExecResult> {
  const askpass = join(server.dir, 'harness-askpass.sh');
  if (!existsSync(askpass)) {
    await writeFile(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$LIPSYNC_HARNESS_PASSWORD"\n', { mode: 0o700 });
  }
  const options = [
    'BatchMode=no',
    'StrictHostKeyChecking=yes',
    `UserKnownHostsFile=${server.knownHostsFile}`,
    'GlobalKnownHostsFile=/dev/null',
    'PreferredAuthentications=password,keyboard-interactive',
    'PubkeyAuthentication=no',
    'NumberOfPasswordPrompts=1',
    'ControlPath=none',
    'ConnectTimeout=10',
  ];
  return runWithInput(
    'ssh',
    ['-F', 'none', ...options.flatMap((o) => ['-o', o]), '-p', String(server.port), '-l', user, '127.0.0.1', command],
    '',
    {
      ...process.env,
      SSH_ASKPASS: askpass,
      SSH_ASKPASS_REQUIRE: 'force',
      DISPLAY: process.env.DISPLAY ?? ':0',
      LIPSYNC_HARNESS_PASSWORD: password,
    },
  );
}

/** A bin dir of symlinks to sh and coreutils, without rsync. */
async function makeNoRsyncBin(dir: string): Promise<string> {
  const bin = join(dir, 'bin-no-rsync');
  await mkdir(bin, { mode: 0o755 });
  for (const tool of NO_RSYNC_TOOLS) {
    for (const systemDir of ['/usr/bin', '/usr/sbin', '/bin']) {
      const target = join(systemDir, tool);
      if (existsSync(target)) {
        await symlink(target, join(bin, tool));
        break;
      }
    }
  }
  return bin;
}

/** Starts sshd on `port`; resolves once a real ssh login succeeds. */
async function launch(
  files: { configFile: string; sshArgs: string[] },
  readyTimeoutMs: number,
): Promise<{ child: ChildProcess; log: () => string }> {
  let log = '';
  const child = spawn(SSHD_PATH, ['-D', '-e', '-f', files.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Always drain the pipes: a full pipe would block sshd.
  const collect = (chunk: Buffer) => {
    log += chunk.toString('utf8');
    if (log.length > MAX_LOG_CHARS) log = log.slice(-MAX_LOG_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  let exited: string | undefined;
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
  });
  child.on('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `code ${code}`;
  });

  const deadline = Date.now() + readyTimeoutMs;
  let lastAttempt = '';
  for (;;) {
    if (spawnError) throw new Error(`could not start ${SSHD_PATH}: ${spawnError.message}`);
    if (exited !== undefined) {
      const err = new Error(`sshd exited (${exited}) before accepting logins:\n${log}`);
      (err as Error & { sshdLog?: string }).sshdLog = log;
      throw err;
    }
    const attempt = await run('ssh', [...files.sshArgs, '-o', 'ConnectTimeout=2', 'true'], 5_000);
    if (attempt.code === 0) return { child, log: () => log };
    lastAttempt = attempt.stderr;
    if (Date.now() > deadline) {
      killQuietly(child.pid ?? -1, 'SIGKILL');
      throw new Error(
        `sshd did not accept a login within ${readyTimeoutMs} ms.\nlast ssh stderr:\n${lastAttempt}\nsshd stderr:\n${log}`,
      );
    }
    await sleep(100);
  }
}

export async function startSshd(opts: StartSshdOptions = {}): Promise<SshServer> {
  const user = userInfo().username;
  if (process.getuid?.() === 0) {
    // Privilege separation dir; missing in containers where sshd was never started.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  }

  const passwordUser = opts.password ? await ensurePasswordUser(opts.password) : undefined;

  const dir = await makeTempDir('lipsync-sshd');
  try {
    const hostKey = join(dir, 'host_ed25519');
    const identityFile = join(dir, 'id_ed25519');
    const wrongIdentityFile = join(dir, 'id_wrong_ed25519');
    const authorizedKeys = join(dir, 'authorized_keys');
    const knownHostsFile = join(dir, 'known_hosts');
    const sshConfigFile = join(dir, 'ssh_config');
    const configFile = join(dir, 'sshd_config');

    await Promise.all([
      keygen(hostKey, 'lipsync-test-host'),
      keygen(identityFile, 'lipsync-test-client'),
      keygen(wrongIdentityFile, 'lipsync-test-wrong'),
    ]);
    await writeFile(authorizedKeys, await readFile(`${identityFile}.pub`, 'utf8'), { mode: 0o600 });
    const hostPub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    const pathOverride = opts.noRsync ? await makeNoRsyncBin(dir) : undefined;
    const sshArgs = ['-F', sshConfigFile, SSH_ALIAS];

    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      await writeFile(
        configFile,
        sshdConfig({ port, dir, user, authorizedKeys, pathOverride, passwordUser: passwordUser?.user }),
        { mode: 0o600 },
      );
      await writeFile(
        knownHostsFile,
        [`[127.0.0.1]:${port} ${hostPub}`, `[${SSH_ALIAS}]:${port} ${hostPub}`, `${SSH_ALIAS} ${hostPub}`, ''].join(
          '\n',
        ),
        { mode: 0o600 },
      );
      await writeFile(sshConfigFile, clientConfig({ port, user, identityFile, knownHostsFile }), { mode: 0o600 });

      let started: Awaited<ReturnType<typeof launch>>;
      try {
        started = await launch({ configFile, sshArgs }, opts.readyTimeoutMs ?? 10_000);
      } catch (err) {
        lastError = err;
        const log = (err as Error & { sshdLog?: string }).sshdLog ?? '';
        // Someone took the port between freePort() and sshd's bind: try another one.
        if (/Address already in use|Cannot bind any address/i.test(log)) continue;
        throw err;
      }

      const { child, log } = started;
      const pid = child.pid;
      if (pid === undefined) throw new Error('sshd has no pid');
      installCleanup();
      live.set(pid, dir);

      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopping ??= (async () => {
          // Connection processes and the commands they run outlive the listener: end them too.
          const processes = [...descendantPids(pid), pid];
          for (const p of processes) killQuietly(p, 'SIGTERM');
          const until = Date.now() + 3_000;
          while (processes.some(isRunning) && Date.now() < until) await sleep(25);
          for (const p of processes) if (isRunning(p)) killQuietly(p, 'SIGKILL');
          if (child.exitCode === null && child.signalCode === null) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 1_000);
              child.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
            });
          }
          live.delete(pid);
          await rm(dir, { recursive: true, force: true });
        })();
        return stopping;
      };

      if (passwordUser) {
        const login = await passwordLogin({ port, knownHostsFile, dir }, passwordUser.user, passwordUser.password);
        if (login.code !== 0 || login.stdout.trim() !== passwordUser.user) {
          const sshdLog = log();
          await stop();
          throw new Error(
            `password login as ${passwordUser.user} failed (${login.code}):\n${login.stderr}\nsshd stderr:\n${sshdLog}`,
          );
        }
      }

      return {
        host: '127.0.0.1',
        port,
        user,
        alias: SSH_ALIAS,
        dir,
        identityFile,
        wrongIdentityFile,
        knownHostsFile,
        sshConfigFile,
        passwordUser,
        pid,
        sshArgs,
        // -n: stdin from /dev/null, so a command reading stdin cannot hang.
        exec: (command: string) => run('ssh', ['-n', ...sshArgs, '--', command], 60_000),
        log,
        stop,
      };
    }
    throw lastError instanceof Error ? lastError : new Error('sshd could not bind a free port');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * ssh args that use no config file and offer exactly `identityFile`
 * (IdentityFile in a config file only adds to the list, it cannot replace).
 * Host key checking stays on. Append a command.
 */
export function sshArgsWithKey(server: SshServer, identityFile: string): string[] {
  const options = [
    'BatchMode=yes',
    'IdentitiesOnly=yes',
    `IdentityFile=${identityFile}`,
    `UserKnownHostsFile=${server.knownHostsFile}`,
    'GlobalKnownHostsFile=/dev/null',
    'StrictHostKeyChecking=yes',
  ];
  return [
    '-F',
    'none',
    ...options.flatMap((o) => ['-o', o]),
    '-p',
    String(server.port),
    `${server.user}@${server.host}`,
  ];
}
