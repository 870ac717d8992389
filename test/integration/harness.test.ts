// The OpenSSH harness itself: a real sshd, real ssh logins, real keys.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeTempDir, sshArgsWithKey, startSshd, type SshServer } from '../harness/sshd.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Running, not merely a zombie waiting to be reaped. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function ssh(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('sshd harness', () => {
  let server: SshServer;

  beforeAll(async () => {
    server = await startSshd();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs commands over a real ssh login', async () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.alias).toBe('lipsync-test');
    expect(server.port).toBeGreaterThan(0);
    expect(isAlive(server.pid)).toBe(true);

    const r = await server.exec('echo hi');
    expect(r).toEqual({ code: 0, stdout: 'hi\n', stderr: '' });

    const who = await server.exec('id -un');
    expect(who.stdout.trim()).toBe(server.user);
  });

  it('passes the remote exit code back', async () => {
    const r = await server.exec('echo oops >&2; exit 7');
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('oops');
  });

  it('accepts user@127.0.0.1 -p PORT with the config file', async () => {
    const r = await ssh(['-F', server.sshConfigFile, '-p', String(server.port), `${server.user}@127.0.0.1`, 'echo ok']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    expect(r.code).toBe(0);
  });

  it('accepts the authorized key without any config file', async () => {
    const r = await ssh([...sshArgsWithKey(server, server.identityFile), 'echo ok']);
    expect(r.stdout).toBe('ok\n');
    expect(r.code).toBe(0);
  });

  it('refuses the wrong key', async () => {
    const r = await ssh(['-v', ...sshArgsWithKey(server, server.wrongIdentityFile), 'echo should-not-run']);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Permission denied');
    // Only the wrong key was offered.
    expect(r.stderr).toContain(`Offering public key: ${server.wrongIdentityFile}`);
    expect(r.stderr).not.toContain(`Offering public key: ${server.identityFile} `);
  });

  it('keeps host key checking on', async () => {
    const emptyKnownHosts = `${server.dir}/empty_known_hosts`;
    const args = sshArgsWithKey(server, server.identityFile).map((a) =>
      a.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${emptyKnownHosts}` : a,
    );
    const r = await ssh([...args, 'echo should-not-run']);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/Host key verification failed/);
  });

  it('has rsync on the remote', async () => {
    const r = await server.exec('rsync --version');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rsync\s+version/);
  });

  it('rsyncs a file over ssh with the config file', async () => {
    const local = await makeTempDir('lipsync-harness-src');
    try {
      await writeFile(`${local}/hello.txt`, 'hello over ssh\n');
      const r = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(
          'rsync',
          [
            '-a',
            '-e',
            `ssh -F ${server.sshConfigFile}`,
            `${local}/hello.txt`,
            `${server.alias}:${server.dir}/copied.txt`,
          ],
          { stdio: 'ignore' },
        );
        child.on('error', reject);
        child.on('close', resolve);
      });
      expect(r).toBe(0);
      const cat = await server.exec(`cat ${server.dir}/copied.txt`);
      expect(cat.stdout).toBe('hello over ssh\n');
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });
});

describe('sshd harness with noRsync', () => {
  it('has sh and coreutils but no rsync on the remote PATH', async () => {
    const server = await startSshd({ noRsync: true });
    try {
      const missing = await server.exec('command -v rsync');
      expect(missing.code).not.toBe(0);
      expect(missing.stdout).toBe('');

      const run = await server.exec('rsync --version');
      expect(run.code).toBe(127);

      const path = await server.exec('echo "$PATH"');
      expect(path.stdout).toContain(`${server.dir}/bin-no-rsync`);
      expect(path.stdout).not.toMatch(/(^|:)(\/usr)?\/bin(:|$)/m);

      const tools = await server.exec(
        `command -v sh && mkdir -p ${server.dir}/x && touch ${server.dir}/x/f && ls ${server.dir}/x`,
      );
      expect(tools.code).toBe(0);
      expect(tools.stdout).toBe(`${server.dir}/bin-no-rsync/sh\nf\n`);
    } finally {
      await server.stop();
    }
  });
});

describe('sshd harness stop()', () => {
  it('kills sshd, ends open sessions and removes the temp dir; idempotent', async () => {
    const server = await startSshd();
    const { pid, dir } = server;
    expect(isAlive(pid)).toBe(true);
    expect(existsSync(dir)).toBe(true);

    // A session still open when the server stops must end too.
    const session = spawn('ssh', [...server.sshArgs, 'echo ready $$; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const sessionClosed = new Promise<void>((resolve) => session.on('close', () => resolve()));
    const remotePid = await new Promise<number>((resolve, reject) => {
      session.stdout.on('data', (d: Buffer) => {
        const m = /ready (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      session.on('error', reject);
      session.on('close', () => reject(new Error('session ended before it was ready')));
    });
    const stopped = Date.now();

    expect(isRunning(remotePid)).toBe(true);

    await server.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(existsSync(dir)).toBe(false);
    // The remote command is gone too (a zombie left to a non-reaping init counts as gone).
    expect(isRunning(remotePid)).toBe(false);
    await sessionClosed;
    expect(Date.now() - stopped).toBeLessThan(10_000);

    await server.stop();
    await Promise.all([server.stop(), server.stop()]);
  });

  it('gives free ports and temp dirs', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(1023);
    expect(port).toBeLessThan(65536);
    const dir = await makeTempDir('lipsync-harness-tmp');
    expect(existsSync(dir)).toBe(true);
    await rm(dir, { recursive: true });
  });
});
