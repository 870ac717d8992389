/**
 * What the server's side tells beyond content (docs/sync-semantics.md): a folder's
 * permission bits changed on the server reach this computer (R10, "Finding changes"
 * item 2), for an ssh remote and a local-path remote, by a full comparison and by the
 * server's change feed. The real CLI and daemon, real rsync, sshd and inotify.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { createRemoteWatcher, type RemoteChange } from '../../electron/engine/remote/watch.js';
import { closeMaster } from '../../electron/engine/remote/ssh.js';
import type { RemoteCapabilities, SshOptions } from '../../electron/engine/types.js';
import { cli, makeCliEnv, requireBuild, startDaemon, treeSnapshot, waitFor, type CliEnv } from '../support/cli.js';

let server: SshServer;

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  await server?.stop();
});

type Kind = 'ssh' | 'local';

async function pair(kind: Kind): Promise<{ e: CliEnv; local: string; remote: string; sync: () => Promise<string> }> {
  const e = makeCliEnv({ sshConfigFile: server.sshConfigFile, debounceMs: 50 });
  const local = join(e.dir, 'local');
  const remote = join(e.dir, 'server');
  mkdirSync(local);
  mkdirSync(remote);
  const r = await cli(e, ['add', local, kind === 'ssh' ? `${server.alias}:${remote}` : remote, '--id', 'docs']);
  expect(r.code, r.stderr).toBe(0);
  const sync = async () => {
    const s = await cli(e, ['sync']);
    expect(s.code, s.stdout + s.stderr).toBe(0);
    return s.stdout;
  };
  return { e, local, remote, sync };
}

const modeOf = (p: string): number => statSync(p).mode & 0o7777;

const idle = async (e: CliEnv): Promise<boolean> =>
  (await cli(e, ['status', '--json'])).stdout.includes('"state": "idle"');

describe.each(['ssh', 'local'] as const)('a folder permission change on the server (%s remote)', (kind) => {
  it('reaches this computer with a full comparison (R10), and stays put afterwards', async () => {
    const { local, remote, sync } = await pair(kind);
    mkdirSync(join(local, 'shared', 'inner'), { recursive: true });
    writeFileSync(join(local, 'shared', 'inner', 'a.txt'), 'a');
    chmodSync(join(local, 'shared'), 0o755);
    chmodSync(join(local, 'shared', 'inner'), 0o755);
    await sync();
    expect(modeOf(join(remote, 'shared'))).toBe(0o755);

    chmodSync(join(remote, 'shared'), 0o700);
    chmodSync(join(remote, 'shared', 'inner'), 0o750);
    await sync();
    expect(modeOf(join(local, 'shared'))).toBe(0o700);
    expect(modeOf(join(local, 'shared', 'inner'))).toBe(0o750);
    expect(modeOf(join(remote, 'shared'))).toBe(0o700);

    // Nothing moves again, and a change here still goes the other way (R6).
    expect(await sync()).toMatch(/0 files? sent .* 0 received, 0 deleted/);
    chmodSync(join(local, 'shared', 'inner'), 0o711);
    await sync();
    expect(modeOf(join(remote, 'shared', 'inner'))).toBe(0o711);
    expect(modeOf(join(local, 'shared'))).toBe(0o700);
    expect(treeSnapshot(remote)).toEqual(treeSnapshot(local));
  });

  it('leaves folders that both sides made with different permission bits as they are (R16)', async () => {
    const { local, remote, sync } = await pair(kind);
    mkdirSync(join(local, 'both'));
    mkdirSync(join(remote, 'both'));
    chmodSync(join(local, 'both'), 0o755);
    chmodSync(join(remote, 'both'), 0o775);
    await sync();
    await sync();
    expect(modeOf(join(local, 'both'))).toBe(0o755);
    expect(modeOf(join(remote, 'both'))).toBe(0o775);
    // Then a change on the server is a change, and travels.
    chmodSync(join(remote, 'both'), 0o770);
    await sync();
    expect(modeOf(join(local, 'both'))).toBe(0o770);
  });

  it("reaches this computer from the server's change feed while the daemon runs", async () => {
    const { e, local, remote, sync } = await pair(kind);
    mkdirSync(join(local, 'live'));
    chmodSync(join(local, 'live'), 0o755);
    await sync();
    const d = await startDaemon(e);
    try {
      await waitFor(
        () => idle(e),
        20_000,
        () => `idle\n${d.output()}`,
      );
      chmodSync(join(remote, 'live'), 0o705);
      await waitFor(
        () => modeOf(join(local, 'live')) === 0o705,
        15_000,
        () => `local mode 0o705, is 0o${modeOf(join(local, 'live')).toString(8)}\n${d.output()}`,
      );
    } finally {
      await d.stop();
    }
  });
});

describe.each([
  ['walkwatch', { inotifywait: true, gnuFind: true }, '1', 'attrib'],
  ['inotifywait', { inotifywait: true, gnuFind: true }, '0', 'attrib'],
  ['poll', { inotifywait: false, gnuFind: true }, '1', 'modify'],
] as const)("the server's change feed (%s) reports a folder's chmod", (_name, caps, walkwatch, kind) => {
  it('as a change of that folder, so the folder is looked at', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lipsync-dirmode-'));
    mkdirSync(join(root, 'd', 'e'), { recursive: true });
    const ssh: SshOptions = { controlDir: join(root, '.ctl'), configFile: server.sshConfigFile };
    mkdirSync(ssh.controlDir);
    const changes: RemoteChange[] = [];
    const saved = process.env.LIPSYNC_WALKWATCH;
    process.env.LIPSYNC_WALKWATCH = walkwatch;
    const w = createRemoteWatcher(
      { kind: 'ssh', host: server.alias, path: root },
      ssh,
      root,
      caps satisfies RemoteCapabilities,
      { onChanges: (c) => changes.push(...c), onRescanNeeded: () => undefined, onState: () => undefined },
      { pollIntervalMs: 3_600_000, clientId: 'dirmode' },
    );
    try {
      await w.start();
      // A poll marker is dated 1 s back; let it pass so only the chmod is new.
      if (kind === 'modify') await new Promise((r) => setTimeout(r, 2100));
      await w.pollNow();
      changes.length = 0;
      chmodSync(join(root, 'd', 'e'), 0o700);
      const seen = () => changes.some((c) => c.path === 'd/e' && c.isDir && c.kind === kind);
      if (kind === 'modify') await w.pollNow();
      await waitFor(seen, 10_000, () => `a ${kind} of d/e in ${JSON.stringify(changes)}`);
      expect(seen()).toBe(true);
    } finally {
      await w.stop();
      if (saved === undefined) delete process.env.LIPSYNC_WALKWATCH;
      else process.env.LIPSYNC_WALKWATCH = saved;
      await closeMaster({ host: server.alias }, ssh);
    }
  });
});
