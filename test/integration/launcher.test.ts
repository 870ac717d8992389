/**
 * The `lipsync` command (bin/lipsync, what npm puts on the PATH): a sh launcher
 * that runs bin/lipsync.js under Node with MALLOC_ARENA_MAX=2 (unless set) and the
 * V8 flags of the systemd unit (a small young generation), by exec, so the daemon is one process; it works through a symlink, as npm links it.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, makeCliEnv, requireBuild, waitFor } from '../support/cli.js';
import { NODE_MEMORY_FLAGS } from '../../electron/cli/service.js';

const LAUNCHER = join(ROOT, 'bin', 'lipsync');

function environOf(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return env;
}

/** `lipsync run` through `cmd`; returns the daemon's pid environment and its executable, then stops it. */
async function runDaemon(
  cmd: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ env: Map<string, string>; exe: string; argv: string[]; code: number | null }> {
  const e = makeCliEnv();
  const proc = spawn(cmd, ['run'], { env: { ...e.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  await waitFor(
    () => out.includes('running (pid') || proc.exitCode !== null,
    20_000,
    () => `daemon did not start:\n${out}`,
  );
  const env = environOf(proc.pid!);
  const exe = readlinkSync(`/proc/${proc.pid}/exe`);
  const argv = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  proc.kill('SIGINT');
  return { env, exe, argv, code: await exited };
}

describe('the lipsync launcher', () => {
  requireBuild();

  it('runs the CLI with the same output as node bin/lipsync.js, also through a symlink', () => {
    const direct = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    const viaLauncher = spawnSync(LAUNCHER, ['--help'], { encoding: 'utf8' });
    expect(viaLauncher.status).toBe(0);
    expect(viaLauncher.stdout).toBe(direct.stdout);
    expect(viaLauncher.stdout).toMatch(/lipsync/);
    const link = join(mkdtempSync(join(tmpdir(), 'lipsync-bin-')), 'lipsync');
    symlinkSync(LAUNCHER, link);
    const viaLink = spawnSync(link, ['--version'], { encoding: 'utf8' });
    expect(viaLink.status).toBe(0);
    expect(viaLink.stdout.trim()).toBe(
      spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' }).stdout.trim(),
    );
  });

  it('starts the daemon as one node process with MALLOC_ARENA_MAX=2, unless the user set it', async () => {
    const d = await runDaemon(LAUNCHER);
    expect(d.env.get('MALLOC_ARENA_MAX')).toBe('2');
    // The same V8 flags as the systemd unit's ExecStart, before the script.
    expect(d.argv.slice(1, 2 + NODE_MEMORY_FLAGS.length)).toEqual([...NODE_MEMORY_FLAGS, realpathSync(BIN)]);
    expect(d.exe).toMatch(/node/); // exec: the shell is gone, the pid is node's
    expect(d.code).toBe(0);
    const mine = await runDaemon(LAUNCHER, { MALLOC_ARENA_MAX: '4' });
    expect(mine.env.get('MALLOC_ARENA_MAX')).toBe('4');
    expect(mine.code).toBe(0);
  });
});
