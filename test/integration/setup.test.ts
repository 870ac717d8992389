// The setup wizard's engine side against a real sshd: host keys, key pairs,
// installing a key with a password typed once, browsing remote folders.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort, makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import { browseRemote } from '../../electron/engine/setup/browse.js';
import { testConnection } from '../../electron/engine/setup/connection.js';
import type { SetupContext } from '../../electron/engine/setup/context.js';
import { trustHostKey } from '../../electron/engine/setup/hostkey.js';
import { ASKPASS_SCRIPT, installKey } from '../../electron/engine/setup/install-key.js';
import { generateKey, listKeys } from '../../electron/engine/setup/keys.js';
import { LipsyncError } from '../../electron/engine/errors.js';
import { run } from '../../electron/engine/proc/run.js';

const RAND = randomBytes(6).toString('hex');
const PW_USER = 'lipsync-pw-test';
// Shell-hostile on purpose: quotes, $(), spaces.
const PASSWORD = `Pw ${RAND} 'q' "d" $(x) \`y\``;

async function rejection(p: Promise<unknown>): Promise<LipsyncError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LipsyncError);
    return e as LipsyncError;
  }
  throw new Error('expected a rejection');
}

async function fingerprintOfFile(pub: string): Promise<string> {
  const r = await run('ssh-keygen', ['-l', '-f', pub]);
  expect(r.code).toBe(0);
  return r.stdout.split(' ')[1] as string;
}

/** Every file under `dir` (recursively) with its content. */
function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!existsSync(dir)) return out;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return out; // a directory vanished while being read (the askpass dir is removed concurrently)
  }
  for (const e of entries) {
    const p = join(e.parentPath, e.name);
    if (e.isFile()) {
      try {
        out.set(p, readFileSync(p));
      } catch {
        // Deleted meanwhile.
      }
    }
  }
  return out;
}

/** Process command lines that contain `needle` (other than this test process). */
function cmdlinesWith(needle: string): string[] {
  const hits: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(needle)) hits.push(cmd.replace(/\0/g, ' '));
    } catch {
      // Gone.
    }
  }
  return hits;
}

describe('setup wizard engine (real sshd)', () => {
  let server: SshServer;
  let base: string;
  let hostFp: string;
  let knownHosts: string;
  let cfg: string;
  let ctx: SetupContext;

  beforeAll(async () => {
    server = await startSshd({ password: { user: PW_USER, password: PASSWORD } });
    base = await makeTempDir('lipsync-setup');
    knownHosts = join(base, 'kh', 'known_hosts'); // the directory does not exist yet either
    cfg = join(base, 'ssh_config');
    await writeFile(
      cfg,
      [
        'Host myalias',
        '  HostName 127.0.0.1',
        `  Port ${server.port}`,
        'Host *',
        `  UserKnownHostsFile ${knownHosts}`,
        '  GlobalKnownHostsFile /dev/null',
        '  IdentitiesOnly yes',
        '',
      ].join('\n'),
    );
    ctx = {
      sshConfigFile: cfg,
      controlDir: join(base, 'ctl'),
      sshDir: join(base, 'dot-ssh'),
      tmpDir: join(base, 'tmp'),
    };
    await mkdir(ctx.tmpDir as string);
    hostFp = await fingerprintOfFile(join(server.dir, 'host_ed25519.pub'));
  });

  afterAll(async () => {
    await server?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  const target = () => ({ host: '127.0.0.1', port: server.port, user: server.user, identityFile: server.identityFile });

  it('the harness lets the password user in with its password only', async () => {
    expect(server.passwordUser?.user).toBe(PW_USER);
    const r = await run('ssh', [
      ...['-F', 'none', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${server.knownHostsFile}`],
      ...['-o', 'IdentitiesOnly=yes', '-i', server.identityFile, '-p', String(server.port), '-l', PW_USER],
      ...['127.0.0.1', 'true'],
    ]);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain('Permission denied');
  });

  it('reports an unknown host key with the fingerprint ssh-keygen -l shows', async () => {
    const r = await testConnection(target(), ctx);
    expect(r).toEqual({
      reachable: true,
      hostKey: { type: 'ED25519', fingerprint: hostFp, status: 'unknown' },
      auth: 'not-tried',
      rsyncVersion: null,
    });
    expect(existsSync(knownHosts)).toBe(false);
  });

  it('refuses to trust a fingerprint the server does not have', async () => {
    const e = await rejection(
      trustHostKey(
        { host: '127.0.0.1', port: server.port, fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
        ctx,
      ),
    );
    expect(e.kind).toBe('host-key-changed');
    expect(e.message).toContain('Nothing was trusted');
    expect(existsSync(knownHosts)).toBe(false);
  });

  it('trusts the fingerprint the user saw; then the key login works', async () => {
    expect(await trustHostKey({ host: '127.0.0.1', port: server.port, fingerprint: hostFp }, ctx)).toEqual({
      trusted: true,
    });
    const hostPub = readFileSync(join(server.dir, 'host_ed25519.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    expect(readFileSync(knownHosts, 'utf8')).toBe(`[127.0.0.1]:${server.port} ${hostPub}\n`);
    expect(statSync(join(base, 'kh')).mode & 0o777).toBe(0o700);

    // Again: nothing to add.
    await trustHostKey({ host: '127.0.0.1', port: server.port, fingerprint: hostFp }, ctx);
    expect(readFileSync(knownHosts, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);

    const r = await testConnection(target(), ctx);
    expect(r.hostKey).toEqual({ type: 'ED25519', fingerprint: hostFp, status: 'known' });
    expect(r.auth).toBe('ok');
    expect(r.rsyncVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.error).toBeUndefined();

    // A Host alias from the ssh config resolves to the same [127.0.0.1]:port entry.
    const viaAlias = await testConnection(
      { host: 'myalias', user: server.user, identityFile: server.identityFile },
      ctx,
    );
    expect(viaAlias.hostKey?.status).toBe('known');
    expect(viaAlias.auth).toBe('ok');
  });

  it('says needs-key when the server refuses the key', async () => {
    const r = await testConnection({ ...target(), identityFile: server.wrongIdentityFile }, ctx);
    expect(r.hostKey?.status).toBe('known');
    expect(r.auth).toBe('needs-key');
    expect(r.rsyncVersion).toBeNull();
  });

  it('reports an unreachable server', async () => {
    const r = await testConnection({ host: '127.0.0.1', port: await freePort() }, ctx);
    expect(r.reachable).toBe(false);
    expect(r.hostKey).toBeNull();
    expect(r.auth).toBe('not-tried');
    expect(r.error?.kind).toBe('host-unreachable');
  });

  it('stops hard on a changed host key and never trusts it', async () => {
    const otherKh = join(base, 'changed_known_hosts');
    const otherCfg = join(base, 'changed_ssh_config');
    const otherPub = readFileSync(`${server.wrongIdentityFile}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const content = `[127.0.0.1]:${server.port} ${otherPub}\n`;
    await writeFile(otherKh, content);
    await writeFile(otherCfg, `Host *\n  UserKnownHostsFile ${otherKh}\n  GlobalKnownHostsFile /dev/null\n`);
    const c: SetupContext = { ...ctx, sshConfigFile: otherCfg };

    const r = await testConnection(target(), c);
    expect(r.reachable).toBe(true);
    expect(r.hostKey).toEqual({ type: 'ED25519', fingerprint: hostFp, status: 'changed' });
    expect(r.auth).toBe('not-tried');
    expect(r.error?.kind).toBe('host-key-changed');
    expect(r.error?.message).toMatch(/hard stop/);
    expect(r.error?.message).toMatch(/reinstalled|intercepting/);
    expect(r.error?.fix).toContain(`ssh-keygen -R '[127.0.0.1]:${server.port}'`);
    expect(r.error?.fix).toContain(hostFp);

    const e = await rejection(trustHostKey({ host: '127.0.0.1', port: server.port, fingerprint: hostFp }, c));
    expect(e.kind).toBe('host-key-changed');
    expect(readFileSync(otherKh, 'utf8')).toBe(content);
  });

  it('generates an ed25519 pair, never overwrites, and lists it', async () => {
    const sshDir = ctx.sshDir as string;
    const key = await generateKey({ comment: 'lipsync test key' }, ctx);
    expect(key.path).toBe(join(sshDir, 'id_ed25519_lipsync'));
    expect(key.type).toBe('ED25519');
    expect(key.comment).toBe('lipsync test key');
    expect(key.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+={0,3} lipsync test key$/);
    expect(key.fingerprint).toBe(await fingerprintOfFile(`${key.path}.pub`));
    expect(statSync(sshDir).mode & 0o777).toBe(0o700);
    expect(statSync(key.path).mode & 0o777).toBe(0o600);
    const before = readFileSync(key.path);

    const e = await rejection(generateKey({}, ctx));
    expect(e.message).toContain('never overwrites');
    expect(readFileSync(key.path)).toEqual(before);
    await writeFile(join(sshDir, 'only-pub.pub'), 'x');
    expect((await rejection(generateKey({ path: 'only-pub' }, ctx))).message).toContain('already exists');

    const other = await generateKey({ path: 'second key' }, ctx);
    await writeFile(join(sshDir, 'config'), 'Host x\n');
    await writeFile(join(sshDir, 'known_hosts'), '');
    expect(await listKeys({}, ctx)).toEqual([key, other]);
  });

  it('refuses a key file outside the ssh directory and writes nothing', async () => {
    const sshDir = ctx.sshDir as string;
    const outside = await makeTempDir('lipsync-keyout-');
    const before = readdirSync(sshDir).sort();
    await symlink(outside, join(sshDir, 'out-link'));
    for (const path of [
      '../../../../../../../..' + join(outside, 'evil'),
      join(outside, 'evil'),
      'out-link/evil',
      'out-link/sub/evil',
      '..',
    ]) {
      const e = await rejection(generateKey({ path }, ctx));
      expect(e.kind).toBe('invalid-settings');
      expect(e.message).toContain(`is not inside ${sshDir}`);
      expect(e.fix).toContain('Give a file name');
    }
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(sshDir).sort()).toEqual([...before, 'out-link'].sort());
    await rm(join(sshDir, 'out-link'));
    await rm(outside, { recursive: true });
  });

  it('installs a key with the password, once, without leaking it', async () => {
    const home = server.passwordUser?.home as string;
    await rm(join(home, '.ssh'), { recursive: true, force: true });
    const key = join(ctx.sshDir as string, 'id_ed25519_lipsync');
    const params = { host: '127.0.0.1', port: server.port, user: PW_USER, publicKeyPath: `${key}.pub` };

    // Watch the temp dir and the process list while installKey runs.
    const seenFiles = new Map<string, Buffer>();
    const leaks: string[] = [];
    const timer = setInterval(() => {
      for (const [p, c] of filesUnder(ctx.tmpDir as string)) seenFiles.set(p, c);
      leaks.push(...cmdlinesWith(`Pw ${RAND}`));
    }, 1);
    try {
      const wrong = await rejection(installKey({ ...params, password: `${PASSWORD}x` }, ctx));
      expect(wrong.kind).toBe('auth-failed');
      expect(wrong.message).toMatch(/refused the password/);
      expect(existsSync(join(home, '.ssh/authorized_keys'))).toBe(false);

      // Untrusted host key: the password is not sent.
      const c: SetupContext = { ...ctx, sshConfigFile: join(base, 'empty_ssh_config') };
      await writeFile(
        c.sshConfigFile as string,
        `Host *\n  UserKnownHostsFile ${join(base, 'none_known')}\n  GlobalKnownHostsFile /dev/null\n`,
      );
      const untrusted = await rejection(installKey({ ...params, password: PASSWORD }, c));
      expect(untrusted.kind).toBe('host-key-unknown');
      expect(untrusted.message).toMatch(/password was not sent/);

      expect(await installKey({ ...params, password: PASSWORD }, ctx)).toEqual({ installed: true });
      expect(await installKey({ ...params, password: PASSWORD }, ctx)).toEqual({ installed: true });
    } finally {
      clearInterval(timer);
    }

    const pub = readFileSync(`${key}.pub`, 'utf8').trim();
    expect(readFileSync(join(home, '.ssh/authorized_keys'), 'utf8')).toBe(`${pub}\n`);

    // The key now logs in, in BatchMode.
    const login = await run('ssh', [
      ...['-F', 'none', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${server.knownHostsFile}`],
      ...['-o', 'IdentitiesOnly=yes', '-i', key, '-p', String(server.port), '-l', PW_USER, '127.0.0.1', 'id -un'],
    ]);
    expect(login.stderr).toBe('');
    expect(login.stdout).toBe(`${PW_USER}\n`);
    const r = await testConnection({ host: '127.0.0.1', port: server.port, user: PW_USER, identityFile: key }, ctx);
    expect(r.auth).toBe('ok');

    // The askpass script was seen, holds no password, and is gone with its dir.
    const scripts = [...seenFiles].filter(([p]) => p.endsWith('askpass.sh'));
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, content] of scripts) expect(content.toString()).toBe(ASKPASS_SCRIPT);
    for (const [, content] of seenFiles) expect(content.toString()).not.toContain(RAND);
    expect(readdirSync(ctx.tmpDir as string)).toEqual([]);
    expect(leaks).toEqual([]);
    // Nowhere on disk under our dirs or the server's.
    for (const dir of [base, server.dir, join(home, '.ssh')]) {
      for (const [p, content] of filesUnder(dir)) expect(content.toString(), p).not.toContain(RAND);
    }
  });

  it('says when the server refuses password logins for a user', async () => {
    const e = await rejection(
      installKey(
        {
          host: '127.0.0.1',
          port: server.port,
          user: server.user,
          password: 'whatever',
          publicKeyPath: `${server.identityFile}.pub`,
        },
        ctx,
      ),
    );
    expect(e.kind).toBe('auth-failed');
    expect(e.message).toMatch(/does not accept password logins/);
  });

  it('lists remote subdirectories exactly, hidden ones left out', async () => {
    const dir = join(base, 'browse me');
    const names = ['a b', '$(touch x)', 'nl\nx', 'Zeta', 'alpha', '-dash', "it's", 'dir10', 'dir9', 'é'];
    for (const n of [...names, '.hidden']) await mkdir(join(dir, n), { recursive: true });
    await writeFile(join(dir, 'file.txt'), 'x');
    await symlink(join(dir, 'alpha'), join(dir, 'link-to-dir'));
    await symlink(join(dir, 'file.txt'), join(dir, 'link-to-file'));

    const r = await browseRemote({ ...target(), path: dir }, ctx);
    expect(r.path).toBe(dir);
    expect(r.dirs).toEqual([
      '-dash',
      '$(touch x)',
      'a b',
      'alpha',
      'dir9',
      'dir10',
      'é',
      "it's",
      'link-to-dir',
      'nl\nx',
      'Zeta',
    ]);
    expect(existsSync(join(dir, 'x'))).toBe(false);

    const home = await browseRemote(target(), ctx);
    expect(home.path).toBe((await run('sh', ['-c', 'cd ~ && pwd'])).stdout.trim());
    expect(home.dirs.every((d) => !d.startsWith('.'))).toBe(true);

    const missing = await rejection(browseRemote({ ...target(), path: join(dir, 'missing') }, ctx));
    expect(missing.kind).toBe('remote-missing');
    const notDir = await rejection(browseRemote({ ...target(), path: join(dir, 'file.txt') }, ctx));
    expect(notDir.kind).toBe('remote-not-dir');
  });
});
