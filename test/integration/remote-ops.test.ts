// remoteOps against a local-path remote and over the harness sshd (same
// machine: the remote directory is inspected directly).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { freePort, makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import { REMOTE_KINDS, useRemote } from '../support/remotes.js';
import { remoteOps } from '../../electron/engine/remote/ops.js';
import { LipsyncError } from '../../electron/engine/errors.js';
import { run } from '../../electron/engine/proc/run.js';
import type { RemoteSpec, SshOptions } from '../../electron/engine/types.js';

const RAND = randomBytes(6).toString('hex');
const PWNED = `/tmp/lipsync-pwned-ops-${RAND}`;

async function put(root: string, rel: string, content: string): Promise<void> {
  const p = join(root, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
}
const read = (root: string, rel: string) => readFileSync(join(root, rel), 'utf8');

async function rejection(p: Promise<unknown>): Promise<LipsyncError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LipsyncError);
    return e as LipsyncError;
  }
  throw new Error('expected a rejection');
}

describe.each(REMOTE_KINDS)('remoteOps on a %s remote', (kind) => {
  const fx = useRemote(kind, {
    tempPrefix: 'lipsync-ops',
    closeSsh: (_server, o) => remoteOps({ kind: 'ssh', host: 'lipsync-test', path: '/' }, o).close(),
    afterCleanup: () => expect(existsSync(PWNED)).toBe(false),
  });
  const { ssh, spec } = fx;
  async function root(name = 'root'): Promise<string> {
    const dir = join(fx.base, `t${fx.next()}`, name);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  it('probes a directory, a missing path, a file and a path under a file', async () => {
    const dir = await root();
    const p = await remoteOps(spec(dir), ssh).probe();
    expect(p.root).toBe('dir');
    expect(p.rsyncVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect((await remoteOps(spec(join(dir, 'missing/deeper')), ssh).probe()).root).toBe('missing');
    await put(dir, 'file', 'x');
    expect((await remoteOps(spec(join(dir, 'file')), ssh).probe()).root).toBe('not-dir');
    expect((await remoteOps(spec(join(dir, 'file/below')), ssh).probe()).root).toBe('missing');
  });

  it('creates the root and the meta dirs', async () => {
    const dir = join(await root(), "new 'root' $(x)", 'deeper');
    const ops = remoteOps(spec(dir), ssh);
    const e = await rejection(ops.prepareMeta());
    expect(e.kind).toBe('remote-missing');
    expect(existsSync(dir)).toBe(false);
    await ops.createRoot();
    expect(statSync(dir).isDirectory()).toBe(true);
    await ops.createRoot(); // idempotent
    await ops.prepareMeta();
    expect(readdirSync(join(dir, '.lipsync')).sort()).toEqual(['incoming', 'partial', 'trash']);
  });

  it("removes this client's leftover staging folders, and only those", async () => {
    const dir = await root();
    const ops = remoteOps(spec(dir), ssh);
    await ops.prepareMeta();
    await put(dir, '.lipsync/incoming/pme-1/docs/a.txt', 'A');
    await put(dir, '.lipsync/incoming/pme-2/b.txt', 'B');
    await put(dir, '.lipsync/incoming/pother-1/c.txt', 'C');
    await put(dir, '.lipsync/incoming/pmeX-1/d.txt', 'D');
    await ops.prepareMeta('pme-');
    expect(readdirSync(join(dir, '.lipsync/incoming')).sort()).toEqual(['pmeX-1', 'pother-1']);
    await ops.clearIncoming('pother-1');
    expect(readdirSync(join(dir, '.lipsync/incoming'))).toEqual(['pmeX-1']);
    await ops.clearIncoming('nothing-here'); // no match: nothing to do, no error
    expect(readdirSync(join(dir, '.lipsync/incoming'))).toEqual(['pmeX-1']);
    for (const bad of ['', '*', '../x', 'a b', "p'; rm -rf /"]) await expect(ops.clearIncoming(bad)).rejects.toThrow();
    expect(readdirSync(join(dir, '.lipsync/incoming'))).toEqual(['pmeX-1']);
  });

  it('refuses to prepare a root that is a file', async () => {
    const dir = await root();
    await put(dir, 'file', 'x');
    const e = await rejection(remoteOps(spec(join(dir, 'file')), ssh).prepareMeta());
    expect(e.kind).toBe('remote-not-dir');
  });

  it('renames files and dirs, into new parents and over existing targets (which go to the trash)', async () => {
    const dir = await root(`odd root "q" '${PWNED}' $(touch ${PWNED})`);
    const ops = remoteOps(spec(dir), ssh);
    await put(dir, 'a.txt', 'A');
    await put(dir, 'd/x/y', 'Y');
    await put(dir, 'n.txt', 'N');
    await put(dir, 'over.txt', 'new content');
    await put(dir, 'target.txt', 'old target');
    await put(dir, 'again.txt', 'again');
    await put(dir, 'dirover/f', 'F');
    await put(dir, 'fileslot', 'a file in the way');
    await put(dir, 'new\nline', 'nl');
    await put(dir, '-rf', 'dash');
    const trash = '.lipsync/trash/R1';
    const res = await ops.rename(
      [
        { from: 'a.txt', to: 'b.txt' },
        { from: 'd', to: 'e' },
        { from: 'n.txt', to: 'brand/new/parent/n.txt' },
        { from: 'over.txt', to: 'target.txt' },
        { from: 'again.txt', to: 'target.txt' },
        { from: 'dirover', to: 'fileslot' },
        { from: 'does-not-exist', to: 'whatever' },
        { from: 'b.txt', to: 'b.txt' },
        { from: 'new\nline', to: "it's $(touch x)" },
        { from: '-rf', to: '--help' },
      ],
      trash,
    );
    expect(res.map((r) => [r.from, r.ok, r.reason])).toEqual([
      ['a.txt', true, undefined],
      ['d', true, undefined],
      ['n.txt', true, undefined],
      ['over.txt', true, undefined],
      ['again.txt', true, undefined],
      ['dirover', true, undefined],
      ['does-not-exist', false, 'missing'],
      ['b.txt', true, undefined],
      ['new\nline', true, undefined],
      ['-rf', true, undefined],
    ]);
    expect(read(dir, 'b.txt')).toBe('A');
    expect(existsSync(join(dir, 'a.txt'))).toBe(false);
    expect(read(dir, 'e/x/y')).toBe('Y');
    expect(existsSync(join(dir, 'd'))).toBe(false);
    expect(read(dir, 'brand/new/parent/n.txt')).toBe('N');
    expect(read(dir, 'target.txt')).toBe('again');
    expect(read(dir, `${trash}/target.txt`)).toBe('old target');
    expect(read(dir, `${trash}/target.txt.1`)).toBe('new content');
    expect(read(dir, 'fileslot/f')).toBe('F');
    expect(read(dir, `${trash}/fileslot`)).toBe('a file in the way');
    expect(read(dir, "it's $(touch x)")).toBe('nl');
    expect(read(dir, '--help')).toBe('dash');
    expect(existsSync(join(dir, 'x'))).toBe(false);
    expect(existsSync(PWNED)).toBe(false);
  });

  it('reports a failed move and restores the target it trashed', async () => {
    const dir = await root();
    await put(dir, 'p/child/f', 'f');
    await put(dir, 'p/child/g', 'g');
    // Moving a directory into its own subtree fails.
    const res = await remoteOps(spec(dir), ssh).rename([{ from: 'p', to: 'p/child/g' }], '.lipsync/trash/R');
    expect(res[0]?.ok).toBe(false);
    expect(res[0]?.reason).toBeTruthy();
    expect(res[0]?.reason).not.toBe('missing');
    expect(read(dir, 'p/child/g')).toBe('g');
  });

  it('rejects paths that leave the root', async () => {
    const dir = await root();
    const ops = remoteOps(spec(dir), ssh);
    await expect(ops.rename([{ from: '../x', to: 'y' }], '.lipsync/trash/R')).rejects.toBeInstanceOf(LipsyncError);
    await expect(ops.rename([{ from: 'x', to: '/etc/passwd' }], '.lipsync/trash/R')).rejects.toBeInstanceOf(
      LipsyncError,
    );
    await expect(ops.rename([{ from: 'x', to: 'y' }], '../trash')).rejects.toBeInstanceOf(LipsyncError);
  });

  it('reads and claims the pair marker; the first claim stands', async () => {
    const dir = await root();
    const ops = remoteOps(spec(dir), ssh);
    expect(await ops.readMarker()).toBeNull();
    expect(await ops.claimMarker("pair-'1' $(x)")).toBe("pair-'1' $(x)");
    expect(await ops.readMarker()).toBe("pair-'1' $(x)");
    expect(await readFile(join(dir, '.lipsync/pair-id'), 'utf8')).toBe("pair-'1' $(x)\n");
    expect(await ops.claimMarker('pair-2')).toBe("pair-'1' $(x)");
    expect(await ops.readMarker()).toBe("pair-'1' $(x)");
    expect(readdirSync(join(dir, '.lipsync'))).toEqual(['pair-id']);
    const missing = remoteOps(spec(join(dir, 'nope')), ssh);
    expect(await missing.readMarker()).toBeNull();
    expect((await rejection(missing.claimMarker('x'))).kind).toBe('remote-missing');
    await ops.close();
  });

  it('two clients claiming one empty folder at once agree on one id', async () => {
    for (let round = 0; round < 5; round++) {
      const dir = await root();
      const a = remoteOps(spec(dir), ssh);
      const b = remoteOps(spec(dir), ssh);
      const [ia, ib] = await Promise.all([a.claimMarker(`a${round}`), b.claimMarker(`b${round}`)]);
      expect(ia).toBe(ib);
      expect([`a${round}`, `b${round}`]).toContain(ia);
      expect(await a.readMarker()).toBe(ia);
      expect(readdirSync(join(dir, '.lipsync'))).toEqual(['pair-id']);
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('remoteOps over ssh: failures', () => {
  let server: SshServer;
  let base: string;
  let n = 0;

  beforeAll(async () => {
    base = await makeTempDir('lipsync-ops-fail');
    server = await startSshd();
  });
  afterAll(async () => {
    await server?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  /** A minimal client config (no IdentityFile: IdentityFile lines only add keys) and a fresh ControlPath dir. */
  async function options(o: { port?: number; knownHosts?: string; identityFile?: string }): Promise<SshOptions> {
    n++;
    const cfg = join(base, `config-${n}`);
    await writeFile(
      cfg,
      [
        'Host lipsync-test',
        '  HostName 127.0.0.1',
        `  Port ${o.port ?? server.port}`,
        `  User ${server.user}`,
        `  UserKnownHostsFile ${o.knownHosts ?? server.knownHostsFile}`,
        '  GlobalKnownHostsFile /dev/null',
        '',
      ].join('\n'),
    );
    const ssh: SshOptions = { controlDir: join(base, `ctl-${n}`), configFile: cfg, connectTimeoutSec: 5 };
    ssh.identityFile = o.identityFile ?? server.identityFile;
    return ssh;
  }
  const remote: RemoteSpec = { kind: 'ssh', host: 'lipsync-test', path: '/tmp' };

  it('works with the right key (the configs below differ in one thing each)', async () => {
    const p = await remoteOps(remote, await options({})).probe();
    expect(p.root).toBe('dir');
  });

  it('auth-failed for a key the server does not accept', async () => {
    const e = await rejection(remoteOps(remote, await options({ identityFile: server.wrongIdentityFile })).probe());
    expect(e.kind).toBe('auth-failed');
    expect(e.fix).toContain(`ssh-copy-id -i ${server.wrongIdentityFile}.pub`);
  });

  it('host-unreachable for a closed port', async () => {
    const e = await rejection(remoteOps(remote, await options({ port: await freePort() })).probe());
    expect(e.kind).toBe('host-unreachable');
    expect(e.message).toMatch(/Connection refused/);
  });

  it('host-key-changed when known_hosts holds another key for the host', async () => {
    const otherKey = join(base, 'other_host_key');
    await run('ssh-keygen', ['-t', 'ed25519', '-N', '', '-q', '-f', otherKey]);
    const pub = (await readFile(`${otherKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    const kh = join(base, 'known_hosts_changed');
    await writeFile(kh, `[127.0.0.1]:${server.port} ${pub}\n[lipsync-test]:${server.port} ${pub}\n`);
    const e = await rejection(remoteOps(remote, await options({ knownHosts: kh })).probe());
    expect(e.kind).toBe('host-key-changed');
    expect(e.fix).toMatch(/ssh-keygen .*-R/);
  });

  it('host-key-unknown when known_hosts does not know the host', async () => {
    const kh = join(base, 'known_hosts_empty');
    await writeFile(kh, '');
    const e = await rejection(remoteOps(remote, await options({ knownHosts: kh })).probe());
    expect(e.kind).toBe('host-key-unknown');
  });

  it('reports rsyncVersion null when the server has no rsync', async () => {
    const bare = await startSshd({ noRsync: true });
    const ssh: SshOptions = { controlDir: join(base, 'ctl-norsync'), configFile: bare.sshConfigFile };
    try {
      const ops = remoteOps({ kind: 'ssh', host: 'lipsync-test', path: base }, ssh);
      expect(await ops.probe()).toEqual({ rsyncVersion: null, root: 'dir' });
      await ops.close();
    } finally {
      await bare.stop();
    }
  });
});
