// Parsing and script helpers of the setup wizard's engine side (no sshd).

import { describe, expect, it } from 'vitest';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { browseScript, parseBrowseOutput } from '../../electron/engine/setup/browse.js';
import {
  hostKeyVerdict,
  knownHostsName,
  parseKeyscan,
  parseKnownHostsFind,
  preferredKey,
  type KnownKey,
} from '../../electron/engine/setup/hostkey.js';
import { ASKPASS_SCRIPT, installKeyScript } from '../../electron/engine/setup/install-key.js';
import { parseFingerprintLine, parsePublicKeyLine } from '../../electron/engine/setup/key-format.js';
import { keyPathIn } from '../../electron/engine/setup/keys.js';
import { parseSshG } from '../../electron/engine/setup/resolve-host.js';
import { LipsyncError } from '../../electron/engine/errors.js';
import { run } from '../../electron/engine/proc/run.js';
import { wrapScript } from '../../electron/engine/remote/ssh.js';
import { makeTempDir } from '../harness/sshd.js';
import {
  BrowseRemoteParamsSchema,
  GenerateKeyParamsSchema,
  InstallKeyParamsSchema,
  TestConnectionParamsSchema,
  TrustHostKeyParamsSchema,
} from '../../shared/setup.js';

const ED = { algo: 'ssh-ed25519', blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIP9jgAkDzNaZdnXHyN0bltOTgmgQN2pSWji9KCwEG5UI' };
const ED2 = { algo: 'ssh-ed25519', blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIBBBBkDzNaZdnXHyN0bltOTgmgQN2pSWji9KCwEG5UI' };
const RSA = { algo: 'ssh-rsa', blob: 'AAAAB3NzaC1yc2EAAAADAQABAAABAQCuLw2Jkxpk' };
const known = (k: { algo: string; blob: string }, marker: string | null = null): KnownKey => ({
  ...k,
  marker,
  file: '/kh',
});

describe('parseSshG', () => {
  it('reads host, port, user, known_hosts files, alias and proxies', () => {
    const out = [
      'user bob',
      'hostname example.org',
      'port 2222',
      'hostkeyalias myalias',
      'userknownhostsfile /home/b/my known/kh /home/b/.ssh/known_hosts2',
      'globalknownhostsfile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2',
      'proxyjump jump.example.org',
      '',
    ].join('\n');
    expect(parseSshG(out)).toEqual({
      hostname: 'example.org',
      port: 2222,
      user: 'bob',
      userKnownHostsFiles: ['/home/b/my known/kh', '/home/b/.ssh/known_hosts2'],
      globalKnownHostsFiles: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
      hostKeyAlias: 'myalias',
      proxied: true,
    });
    const plain = parseSshG('hostname 10.0.0.1\nport 22\nuserknownhostsfile /root/.ssh/known_hosts\n');
    expect(plain.proxied).toBe(false);
    expect(plain.hostKeyAlias).toBeNull();
    expect(() => parseSshG('port 22\n')).toThrow();
  });

  it('names known_hosts entries like ssh does', () => {
    expect(knownHostsName('example.org', 22)).toBe('example.org');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(knownHostsName('127.0.0.1', 2222, 'alias')).toBe('alias');
  });
});

describe('host keys', () => {
  it('parses ssh-keyscan output (comments and junk skipped, duplicates dropped)', () => {
    const out = `# 127.0.0.1:2299 SSH-2.0-OpenSSH_9.2p1\n[127.0.0.1]:2299 ${RSA.algo} ${RSA.blob}\n[127.0.0.1]:2299 ${ED.algo} ${ED.blob}\n[127.0.0.1]:2299 ${ED.algo} ${ED.blob}\ngarbage\n`;
    expect(parseKeyscan(out)).toEqual([RSA, ED]);
    expect(preferredKey(parseKeyscan(out))).toEqual(ED);
  });

  it('parses ssh-keygen -F output, markers and hashed names included', () => {
    const out = [
      '# Host [h]:2 found: line 1 ',
      `|1|abc=|def= ${ED.algo} ${ED.blob}`,
      '# Host [h]:2 found: line 3 ',
      `@revoked [h]:2 ${RSA.algo} ${RSA.blob}`,
      '',
    ].join('\n');
    expect(parseKnownHostsFind(out, '/kh')).toEqual([known(ED), known(RSA, '@revoked')]);
  });

  it('decides known / unknown / changed', () => {
    expect(hostKeyVerdict([RSA, ED], [])).toEqual({ status: 'unknown', key: ED, conflicting: [] });
    expect(hostKeyVerdict([RSA, ED], [known(ED)])).toEqual({ status: 'known', key: ED, conflicting: [] });
    // Only the RSA key is known: ssh will use it.
    expect(hostKeyVerdict([RSA, ED], [known(RSA)]).status).toBe('known');
    expect(hostKeyVerdict([RSA, ED], [known(RSA)]).key).toEqual(RSA);
    expect(hostKeyVerdict([ED], [known(ED2)])).toEqual({ status: 'changed', key: ED, conflicting: [known(ED2)] });
    // Known keys of other types only: not trusted automatically either.
    expect(hostKeyVerdict([ED], [known(RSA)]).status).toBe('changed');
    expect(hostKeyVerdict([ED], [known(ED), known(ED, '@revoked')]).status).toBe('changed');
    // A CA line alone does not make a plain key known or changed.
    expect(hostKeyVerdict([ED], [known(ED2, '@cert-authority')]).status).toBe('unknown');
  });

  it('parses ssh-keygen -l lines', () => {
    expect(parseFingerprintLine('256 SHA256:f3Jb1qzKTNrLyskyMZL8VF9zk46xo94ztLTg4h54yPw root@vm (ED25519)')).toEqual({
      bits: 256,
      fingerprint: 'SHA256:f3Jb1qzKTNrLyskyMZL8VF9zk46xo94ztLTg4h54yPw',
      comment: 'root@vm',
      type: 'ED25519',
    });
    expect(parseFingerprintLine('3072 SHA256:xyz my (odd) key (RSA)\n')?.comment).toBe('my (odd) key');
    expect(parseFingerprintLine('256 SHA256:xyz no comment (ED25519)')?.type).toBe('ED25519');
    expect(parseFingerprintLine('not a key')).toBeNull();
  });
});

describe('public key lines', () => {
  it('accepts one key line and refuses private keys and junk', () => {
    expect(parsePublicKeyLine(`${ED.algo} ${ED.blob} me@pc  x\n`)).toEqual({
      line: `${ED.algo} ${ED.blob} me@pc x`,
      algo: ED.algo,
      blob: ED.blob,
      comment: 'me@pc x',
    });
    expect(parsePublicKeyLine(`${ED.algo} ${ED.blob}`).line).toBe(`${ED.algo} ${ED.blob}`);
    const priv = () => parsePublicKeyLine('-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blb\n');
    expect(priv).toThrow(LipsyncError);
    expect(priv).toThrow(/PRIVATE key/);
    expect(() => parsePublicKeyLine('hello world')).toThrow(/not an SSH public key/);
    expect(() => parsePublicKeyLine(`${ED.algo} ${ED.blob} a\rb`)).toThrow(/not an SSH public key/);
  });
});

describe('browse output', () => {
  it('keeps names exactly, drops hidden ones, sorts', () => {
    const out = ['LIPSYNC-BROWSE', '/home/me', 'b', '.hidden', 'nl\nname', 'A', '$(x)', ''].join('\0');
    expect(parseBrowseOutput(out)).toEqual({ path: '/home/me', dirs: ['$(x)', 'A', 'b', 'nl\nname'] });
    expect(parseBrowseOutput('LIPSYNC-BROWSE\0/\0')).toEqual({ path: '/', dirs: [] });
  });

  it('refuses truncated or foreign output', () => {
    expect(() => parseBrowseOutput('garbage')).toThrow(LipsyncError);
    expect(() => parseBrowseOutput('E\0/home/me\0a\0')).toThrow(LipsyncError);
    expect(() => parseBrowseOutput('LIPSYNC-BROWSE\0/home/me\0a')).toThrow(LipsyncError);
  });
});

describe('scripts (run with the local /bin/sh)', () => {
  it('askpass answers one password prompt from the environment, nothing else', async () => {
    const dir = await makeTempDir('lipsync-askpass-unit');
    try {
      const script = join(dir, 'askpass.sh');
      await writeFile(script, ASKPASS_SCRIPT, { mode: 0o700 });
      const env = {
        ...process.env,
        LIPSYNC_ASKPASS_SECRET: "s3cret 'q' $(x)",
        LIPSYNC_ASKPASS_USED: join(dir, 'used'),
      };
      const hostKeyQuestion = await run(
        script,
        ['Are you sure you want to continue connecting (yes/no/[fingerprint])?'],
        {
          env,
        },
      );
      expect(hostKeyQuestion.code).toBe(1);
      expect(hostKeyQuestion.stdout).toBe('');
      const first = await run(script, ["me@host's password: "], { env });
      expect(first).toMatchObject({ code: 0, stdout: "s3cret 'q' $(x)\n" });
      const second = await run(script, ['Password: '], { env });
      expect(second).toMatchObject({ code: 1, stdout: '' });
      expect(ASKPASS_SCRIPT).not.toContain('s3cret');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('installKeyScript adds the key once, after a last line without newline', async () => {
    const home = await makeTempDir('lipsync-home-unit');
    try {
      const key = `${ED.algo} ${ED.blob} it's "me" $(touch pwned)`;
      const env = { ...process.env, HOME: home };
      const once = await run('/bin/sh', ['-s'], { input: wrapScript(installKeyScript(key)), env });
      expect(once.code).toBe(0);
      expect(await readFile(join(home, '.ssh/authorized_keys'), 'utf8')).toBe(`${key}\n`);
      await run('/bin/sh', ['-s'], { input: wrapScript(installKeyScript(key)), env });
      expect(await readFile(join(home, '.ssh/authorized_keys'), 'utf8')).toBe(`${key}\n`);

      await writeFile(join(home, '.ssh/authorized_keys'), 'ssh-rsa AAAA other');
      await run('/bin/sh', ['-s'], { input: wrapScript(installKeyScript(key)), env });
      expect(await readFile(join(home, '.ssh/authorized_keys'), 'utf8')).toBe(`ssh-rsa AAAA other\n${key}\n`);
      expect(existsSync(join(home, 'pwned'))).toBe(false);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('browseScript resolves ~ and lists directories NUL-separated', async () => {
    const home = await makeTempDir('lipsync-browse-unit');
    try {
      await mkdir(join(home, 'sub dir', 'x'), { recursive: true });
      await mkdir(join(home, '.hid'));
      await writeFile(join(home, 'f'), '');
      const env = { ...process.env, HOME: home };
      const list = async (p: string) =>
        (await run('/bin/sh', ['-s'], { input: wrapScript(browseScript(p)), env })).stdout;
      expect(parseBrowseOutput(await list('~'))).toEqual({ path: home, dirs: ['sub dir'] });
      expect(parseBrowseOutput(await list(''))).toEqual({ path: home, dirs: ['sub dir'] });
      expect(parseBrowseOutput(await list('~/sub dir'))).toEqual({ path: join(home, 'sub dir'), dirs: ['x'] });
      const missing = await run('/bin/sh', ['-s'], { input: wrapScript(browseScript(join(home, 'nope'))), env });
      expect(missing.code).toBe(3);
      const file = await run('/bin/sh', ['-s'], { input: wrapScript(browseScript(join(home, 'f'))), env });
      expect(file.code).toBe(4);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('schemas', () => {
  it('validate the wizard params', () => {
    expect(BrowseRemoteParamsSchema.parse({ host: 'h' })).toEqual({ host: 'h', path: '~' });
    expect(TestConnectionParamsSchema.safeParse({ host: '' }).success).toBe(false);
    expect(TestConnectionParamsSchema.safeParse({ host: 'h', port: 70000 }).success).toBe(false);
    expect(TrustHostKeyParamsSchema.safeParse({ host: 'h', fingerprint: '' }).success).toBe(false);
    expect(
      InstallKeyParamsSchema.safeParse({ host: 'h', user: 'u', password: '', publicKeyPath: '/k.pub' }).success,
    ).toBe(false);
  });
});

describe('keyPathIn (where generateKey may write)', () => {
  const dir = '/home/u/.ssh';

  it('takes a file name, a relative path inside, or an absolute path inside the ssh directory', () => {
    expect(keyPathIn(dir, undefined)).toBe('/home/u/.ssh/id_ed25519_lipsync');
    expect(keyPathIn(dir, 'work key')).toBe('/home/u/.ssh/work key');
    expect(keyPathIn(dir, 'keys/work')).toBe('/home/u/.ssh/keys/work');
    expect(keyPathIn(dir, 'a/../b')).toBe('/home/u/.ssh/b');
    expect(keyPathIn(dir, '/home/u/.ssh/abs')).toBe('/home/u/.ssh/abs');
    expect(keyPathIn(dir, '..x')).toBe('/home/u/.ssh/..x');
  });

  it.each([
    '../../../etc/evil',
    '..',
    '.',
    '',
    ' ',
    '/tmp/evil',
    '/home/u/.ssh',
    '/home/u/.sshx/k',
    'keys/',
    'a/../../b',
  ])('refuses %j with the ssh directory and a fix', (given) => {
    let err: unknown;
    try {
      keyPathIn(dir, given);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LipsyncError);
    const e = err as LipsyncError;
    expect(e.kind).toBe('invalid-settings');
    expect(e.message).toContain(`is not inside ${dir}`);
    expect(e.fix).toContain('id_ed25519_lipsync');
  });

  it('the API schema refuses an empty name and control characters', () => {
    expect(GenerateKeyParamsSchema.safeParse({ path: 'k' }).success).toBe(true);
    expect(GenerateKeyParamsSchema.safeParse({}).success).toBe(true);
    expect(GenerateKeyParamsSchema.safeParse({ path: '' }).success).toBe(false);
    expect(GenerateKeyParamsSchema.safeParse({ path: 'a\nb' }).success).toBe(false);
    expect(GenerateKeyParamsSchema.safeParse({ path: 'a\u0000b' }).success).toBe(false);
  });
});
