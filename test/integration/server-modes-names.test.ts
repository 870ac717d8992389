/**
 * What the server's side tells beyond content (docs/sync-semantics.md): a folder's
 * permission bits changed on the server reach this computer (R10, "Finding changes"
 * item 2), for an ssh remote and a local-path remote, by a full comparison and by the
 * server's change feed; a name on the server that is not valid UTF-8 is skipped with a
 * warning naming it (N3). The real CLI and daemon, real rsync, sshd and inotify.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { createRemoteWatcher, type RemoteChange } from '../../electron/engine/remote/watch.js';
import { listRemote } from '../../electron/engine/remote/list.js';
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

/** `root/rel` as bytes, with `bad` (not UTF-8) in it: made directly, as someone on the server would. */
const bytesPath = (root: string, ...parts: (string | number[])[]): Buffer =>
  Buffer.concat([
    Buffer.from(`${root}/`),
    ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))),
  ]);

function makeBadNames(root: string): void {
  writeFileSync(bytesPath(root, 'caf', [0xe9], '.txt'), 'latin-1 name');
  mkdirSync(bytesPath(root, 'd', [0xff]));
  writeFileSync(bytesPath(root, 'd', [0xff], '/inside.txt'), 'below a bad folder');
  mkdirSync(join(root, 'ok'));
  writeFileSync(bytesPath(root, 'ok/x', [0xfe]), 'bad name in a good folder');
  writeFileSync(join(root, 'ok', 'fine.txt'), 'fine');
}

const BAD_WARNINGS = [
  'warning: Skipped caf\\xe9.txt on the server: its name is not valid UTF-8; rename it there to sync it.',
  'warning: Skipped d\\xff on the server: its name is not valid UTF-8; rename it there to sync it.',
  'warning: Skipped ok/x\\xfe on the server: its name is not valid UTF-8; rename it there to sync it.',
];

describe.each(['ssh', 'local'] as const)('a name on the server that is not valid UTF-8 (%s remote)', (kind) => {
  it('is skipped with a warning in `lipsync status` naming it, and nothing is lost', async () => {
    const { e, local, remote } = await pair(kind);
    makeBadNames(remote);
    const d = await startDaemon(e);
    try {
      await waitFor(
        () => idle(e),
        30_000,
        () => `idle\n${d.output()}`,
      );
      await waitFor(
        () => existsSync(join(local, 'ok', 'fine.txt')),
        15_000,
        () => `ok/fine.txt\n${d.output()}`,
      );
      const status = (await cli(e, ['status'])).stdout;
      for (const w of BAD_WARNINGS) expect(status).toContain(w);
      // Reported once each: nothing about what is below the bad folder.
      expect(status).not.toContain('inside.txt');
      // One made while the daemon runs is reported from the server's change feed.
      writeFileSync(bytesPath(remote, 'ok/new', [0xe0]), 'new');
      const warning = 'warning: Skipped ok/new\\xe0 on the server: its name is not valid UTF-8';
      await waitFor(
        async () => (await cli(e, ['status'])).stdout.includes(warning),
        15_000,
        () => `${warning}\n${d.output()}`,
      );
    } finally {
      await d.stop();
    }
    // Nothing of the skipped names came here, and the server still has all of them.
    expect(readdirSync(local).sort()).toEqual(['.lipsync', 'ok']);
    expect(readdirSync(join(local, 'ok'))).toEqual(['fine.txt']);
    expect(existsSync(bytesPath(remote, 'caf', [0xe9], '.txt'))).toBe(true);
    expect(existsSync(bytesPath(remote, 'd', [0xff], '/inside.txt'))).toBe(true);
    expect(existsSync(bytesPath(remote, 'ok/x', [0xfe]))).toBe(true);
    expect(existsSync(bytesPath(remote, 'ok/new', [0xe0]))).toBe(true);
  });
});

describe.each(['ssh', 'local'] as const)('a folder deleted here (%s remote)', (kind) => {
  it('stays on the server while it holds a name that is not UTF-8 (D2)', async () => {
    const { local, remote, sync } = await pair(kind);
    mkdirSync(join(local, 'box'));
    writeFileSync(join(local, 'box', 'a.txt'), 'a');
    await sync();
    writeFileSync(bytesPath(remote, 'box/', [0xe9], 't', [0xe9]), 'summer');
    rmSync(join(local, 'box'), { recursive: true });
    const out = await sync();
    expect(out).toContain('warning: Skipped box/\\xe9t\\xe9 on the server');
    expect(existsSync(bytesPath(remote, 'box/', [0xe9], 't', [0xe9]))).toBe(true);
    expect(existsSync(join(remote, 'box', 'a.txt'))).toBe(false);
  });
});

describe.each([
  ['GNU find', { inotifywait: true, gnuFind: true }],
  ['rsync listing', { inotifywait: false, gnuFind: false }],
] as const)('the server listing (%s) tells the names that are not UTF-8', (_name, caps) => {
  it('once each, escaped, still listing the entries (never taken for deleted)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lipsync-badnames-'));
    makeBadNames(root);
    const ssh: SshOptions = { controlDir: join(root, '.ctl'), configFile: server.sshConfigFile };
    mkdirSync(ssh.controlDir);
    try {
      const bad: string[] = [];
      const paths: string[] = [];
      for await (const entry of listRemote({ kind: 'ssh', host: server.alias, path: root }, ssh, root, '', caps, {
        onBadName: (p) => bad.push(p),
      }))
        paths.push(entry.path);
      expect(bad.sort()).toEqual(['caf\\xe9.txt', 'd\\xff', 'ok/x\\xfe']);
      expect(paths.filter((p) => !p.startsWith('.ctl')).sort()).toEqual(
        ['caf\uFFFD.txt', 'd\uFFFD', 'd\uFFFD/inside.txt', 'ok', 'ok/fine.txt', 'ok/x\uFFFD'].sort(),
      );
    } finally {
      await closeMaster({ host: server.alias }, ssh);
    }
  });
});
