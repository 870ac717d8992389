/**
 * Bad input gets one clear error, a non-zero exit, and writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startSshd, type SshServer } from '../harness/sshd.js';
import { cli, makeCliEnv, requireBuild, type CliEnv } from '../support/cli.js';

let server: SshServer;
let noRsync: SshServer;

beforeAll(async () => {
  requireBuild();
  [server, noRsync] = await Promise.all([startSshd(), startSshd({ noRsync: true })]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), noRsync?.stop()]);
});

const configText = (e: CliEnv) => readFileSync(join(e.configDir, 'config.json'), 'utf8');

async function expectRefused(
  e: CliEnv,
  args: string[],
  pattern: RegExp,
  fixPattern?: RegExp,
): Promise<{ stdout: string; stderr: string }> {
  const before = configText(e);
  const r = await cli(e, args);
  expect(r.code, r.stdout + r.stderr).not.toBe(0);
  expect(r.stderr).toMatch(pattern);
  if (fixPattern) expect(r.stderr).toMatch(fixPattern);
  // One error, not a stack trace.
  expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
  expect(configText(e)).toBe(before);
  return r;
}

function fresh(): { e: CliEnv; local: string; remote: string } {
  const e = makeCliEnv({ sshConfigFile: server.sshConfigFile });
  const local = join(e.dir, 'local');
  const remote = join(e.dir, 'server');
  mkdirSync(local);
  mkdirSync(remote);
  return { e, local, remote };
}

describe('lipsync add refuses bad input with a clear error and writes nothing', () => {
  it('unreachable host', async () => {
    const { e, local } = fresh();
    const port = await freePort();
    await expectRefused(e, ['add', local, `127.0.0.1:${port}:/tmp/x`], /can.t reach|unreachable|refused/i, /fix:/);
  });

  it('wrong key', async () => {
    const { e, local, remote } = fresh();
    // A config that names no key of its own, so only the wrong one is offered.
    const cfg = join(e.dir, 'ssh_config');
    writeFileSync(
      cfg,
      `Host wrongkey\n  HostName 127.0.0.1\n  Port ${server.port}\n  User ${server.user}\n  UserKnownHostsFile ${server.knownHostsFile}\n  IdentitiesOnly yes\n  IdentityAgent none\n`,
    );
    writeFileSync(join(e.configDir, 'config.json'), JSON.stringify({ version: 1, pairs: [], sshConfigFile: cfg }));
    const r = await expectRefused(
      e,
      ['add', local, `wrongkey:${remote}`, '--identity', server.wrongIdentityFile],
      /authenticat|permission denied|key/i,
      /ssh-copy-id|identity/i,
    );
    expect(r.stderr).toContain('fix:');
    expect(existsSync(join(remote, '.lipsync'))).toBe(false);
  });

  it('unknown host key is not silently accepted', async () => {
    const { e, local, remote } = fresh();
    const cfg = join(e.dir, 'ssh_config');
    writeFileSync(
      cfg,
      `Host stranger\n  HostName 127.0.0.1\n  Port ${server.port}\n  User ${server.user}\n  IdentityFile ${server.identityFile}\n  UserKnownHostsFile ${join(e.dir, 'empty_known_hosts')}\n  IdentitiesOnly yes\n`,
    );
    writeFileSync(join(e.configDir, 'config.json'), JSON.stringify({ version: 1, pairs: [], sshConfigFile: cfg }));
    await expectRefused(e, ['add', local, `stranger:${remote}`], /host key/i, /fix:/);
  });

  it('missing local dir', async () => {
    const { e, remote } = fresh();
    await expectRefused(
      e,
      ['add', join(e.dir, 'nope'), `${server.alias}:${remote}`],
      /local folder .*nope.* does not exist/,
      /fix:/,
    );
  });

  it('local path that is a file', async () => {
    const { e, remote } = fresh();
    writeFileSync(join(e.dir, 'afile'), 'x');
    await expectRefused(e, ['add', join(e.dir, 'afile'), `${server.alias}:${remote}`], /is a file, not a folder/);
  });

  it('remote path that is a file', async () => {
    const { e, local, remote } = fresh();
    writeFileSync(join(remote, 'file'), 'x');
    await expectRefused(e, ['add', local, `${server.alias}:${join(remote, 'file')}`], /is a file, not a folder/);
  });

  it('remote folder that does not exist: refused unless --create-remote', async () => {
    const { e, local, remote } = fresh();
    const target = join(remote, 'new', 'deeper');
    await expectRefused(e, ['add', local, `${server.alias}:${target}`], /does not exist/, /--create-remote/);
    expect(existsSync(target)).toBe(false);
    const r = await cli(e, ['add', local, `${server.alias}:${target}`, '--create-remote']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(target)).toBe(true);
  });

  it('rsync missing on the remote', async () => {
    const e = makeCliEnv({ sshConfigFile: noRsync.sshConfigFile });
    const local = join(e.dir, 'local');
    const remote = join(e.dir, 'server');
    mkdirSync(local);
    mkdirSync(remote);
    await expectRefused(e, ['add', local, `${noRsync.alias}:${remote}`], /rsync is not installed/, /apt install rsync/);
    expect(readdirSync(remote)).toEqual([]);
  });

  it('a pair inside another pair, or containing one', async () => {
    const { e, local, remote } = fresh();
    mkdirSync(join(local, 'sub'));
    const ok = await cli(e, ['add', local, `${server.alias}:${remote}`]);
    expect(ok.code, ok.stderr).toBe(0);
    mkdirSync(join(e.dir, 'server2'));
    await expectRefused(
      e,
      ['add', join(local, 'sub'), `${server.alias}:${join(e.dir, 'server2')}`],
      /overlaps the folder of pair/,
    );
    await expectRefused(e, ['add', e.dir, `${server.alias}:${join(e.dir, 'server2')}`], /overlaps the folder of pair/);
  });

  it('a second local folder for a server folder this computer already syncs (or one inside it)', async () => {
    const { e, local, remote } = fresh();
    const ok = await cli(e, ['add', local, `${server.alias}:${remote}`]);
    expect(ok.code, ok.stderr).toBe(0);
    mkdirSync(join(remote, 'inner'));
    for (const [dir, target] of [
      ['other', remote],
      ['other2', `${remote}/`],
      ['other3', join(remote, 'inner')],
    ] as const) {
      mkdirSync(join(e.dir, dir));
      await expectRefused(
        e,
        ['add', join(e.dir, dir), `${server.alias}:${target}`],
        /server folder .* (is already synced by|overlaps the server folder of) pair "local"/,
        /use pair "local"/,
      );
    }
    expect(readdirSync(join(e.dir, 'other'))).toEqual([]);
  });

  it('remote address without an absolute path', async () => {
    const { e, local } = fresh();
    await expectRefused(e, ['add', local, `${server.alias}:relative/path`], /absolute/);
  });

  it('an unknown direction', async () => {
    const { e, local, remote } = fresh();
    await expectRefused(
      e,
      ['add', local, `${server.alias}:${remote}`, '--direction', 'sideways'],
      /--direction must be two-way, send-only or receive-only/,
    );
  });

  it('a bandwidth limit out of range says the allowed range', async () => {
    const { e, local, remote } = fresh();
    for (const v of ['1000000001', '99999999999999999999999']) {
      await expectRefused(
        e,
        ['add', local, `${server.alias}:${remote}`, '--bwlimit', v],
        new RegExp(`--bwlimit must be at most 1000000000 KiB/s, not ${v}\\.`),
        /from 1 to 1000000000 KiB\/s .*, or 0 for no limit/,
      );
    }
    await expectRefused(
      e,
      ['add', local, `${server.alias}:${remote}`, '--bwlimit', '2.5'],
      /--bwlimit must be a whole number/,
    );
  });

  it('an invalid settings file is reported with the field name', async () => {
    const { e } = fresh();
    writeFileSync(
      join(e.configDir, 'config.json'),
      JSON.stringify({ version: 1, pairs: [{ id: 'x', local: 'relative', remote: '/r', bwLimitKBps: -5 }] }),
    );
    const r = await cli(e, ['list']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/pairs/);
    expect(r.stderr).toMatch(/local|bwLimitKBps/);
  });
});
