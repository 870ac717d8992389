// The setup wizard's checks, against a key-only sshd (password logins off): a key
// file anywhere (readKey), the connection test with exactly the selected key
// (IdentitiesOnly), and the local folder check of the Folders step (checkLocalFolder).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import { testConnection } from '../../electron/engine/setup/connection.js';
import type { SetupContext } from '../../electron/engine/setup/context.js';
import { generateKey, readKey } from '../../electron/engine/setup/keys.js';
import { checkLocalFolder } from '../../electron/engine/pairs.js';
import { LipsyncError } from '../../electron/engine/errors.js';
import type { PairSettings } from '../../shared/settings.js';

async function rejection(p: Promise<unknown>): Promise<LipsyncError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LipsyncError);
    return e as LipsyncError;
  }
  throw new Error('expected a rejection');
}

describe('wizard checks (key-only server)', () => {
  let server: SshServer;
  let base: string;
  let ctx: SetupContext;

  beforeAll(async () => {
    server = await startSshd();
    base = await makeTempDir('lipsync-wizard-checks');
    const cfg = join(base, 'ssh_config');
    // No IdentitiesOnly and no IdentityFile here: only the explicit key of each test may log in.
    await writeFile(
      cfg,
      ['Host *', `  UserKnownHostsFile ${server.knownHostsFile}`, '  GlobalKnownHostsFile /dev/null', ''].join('\n'),
    );
    ctx = { sshConfigFile: cfg, controlDir: join(base, 'ctl'), sshDir: join(base, 'dot-ssh'), homeDir: base };
  });

  afterAll(async () => {
    await server?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('a new key is refused until its public line is in authorized_keys, then the test with it succeeds', async () => {
    const key = await generateKey({ comment: 'wizard-checks' }, ctx);
    const target = { host: '127.0.0.1', port: server.port, user: server.user, identityFile: key.path };
    const before = await testConnection(target, ctx);
    expect(before).toMatchObject({ reachable: true, auth: 'needs-key' });
    expect(before.hostKey?.status).toBe('known');
    // What the user does by hand on the server: append the line the wizard shows.
    await appendFile(join(server.dir, 'authorized_keys'), `${key.publicKey}\n`);
    const after = await testConnection(target, ctx);
    expect(after.auth).toBe('ok');
    expect(after.rsyncVersion).toMatch(/^\d+\.\d+\.\d+/);
    // Without the key the same test fails: it was this key that logged in, not another.
    expect((await testConnection({ ...target, identityFile: server.wrongIdentityFile }, ctx)).auth).toBe('needs-key');
  });

  it('readKey reads any key pair by its private or public path, also as ~/…', async () => {
    const dir = join(base, 'elsewhere');
    await mkdir(dir);
    const path = join(dir, 'my key');
    await writeFile(path, await readFile(server.identityFile));
    await writeFile(`${path}.pub`, await readFile(`${server.identityFile}.pub`));
    const k = await readKey({ path }, ctx);
    expect(k.path).toBe(path);
    expect(k.publicKey).toMatch(/^ssh-ed25519 AAAA/);
    expect(k.fingerprint).toMatch(/^SHA256:/);
    expect(await readKey({ path: `${path}.pub` }, ctx)).toEqual(k);
    expect(await readKey({ path: '~/elsewhere/my key' }, ctx)).toEqual(k);
  });

  it('readKey says what to do with a relative path, a missing key or a missing .pub', async () => {
    const rel = await rejection(readKey({ path: 'id_ed25519' }, ctx));
    expect(rel.message).toContain('not a full path');
    expect(rel.fix).toContain('/');
    const missing = await rejection(readKey({ path: join(base, 'nope') }, ctx));
    expect(missing.message).toContain('no private key file');
    const lone = join(base, 'lone');
    await writeFile(lone, await readFile(server.identityFile), { mode: 0o600 });
    const noPub = await rejection(readKey({ path: lone }, ctx));
    expect(noPub.message).toContain('has no public half');
    expect(noPub.fix).toContain(`ssh-keygen -y -f ${lone} > ${lone}.pub`);
  });

  it('checkLocalFolder: the real path and entry count, or a message with the fix', async () => {
    const empty = join(base, 'Empty');
    await mkdir(empty);
    expect(await checkLocalFolder(empty, [], base)).toEqual({ path: empty, entries: 0 });
    expect(await checkLocalFolder('~/Empty', [], base)).toEqual({ path: empty, entries: 0 });
    await writeFile(join(empty, 'a.txt'), 'a');
    await mkdir(join(empty, '.lipsync'));
    expect((await checkLocalFolder(`${empty}/`, [], base)).entries).toBe(1);

    const rel = await rejection(checkLocalFolder('Sync', [], base));
    expect(rel.kind).toBe('invalid-settings');
    expect(rel.fix).toContain(join(base, 'Sync'));
    const missing = await rejection(checkLocalFolder(join(base, 'Missing'), [], base));
    expect(missing.kind).toBe('local-missing');
    expect(missing.fix).toMatch(/mkdir/);
    const file = await rejection(checkLocalFolder(join(empty, 'a.txt'), [], base));
    expect(file.kind).toBe('local-not-dir');
    const docs: PairSettings = {
      id: 'docs',
      local: base,
      remote: 'ann@nas:/srv/docs',
      direction: 'two-way',
      excludes: [],
      bwLimitKBps: 0,
      compression: 'auto',
      paused: false,
      pausedUntil: null,
      rescanIntervalSec: 3600,
    };
    const overlap = await rejection(checkLocalFolder(empty, [docs], base));
    expect(overlap.kind).toBe('pair-overlap');
    expect(overlap.message).toContain('"docs"');
  });
});
