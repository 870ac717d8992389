/**
 * `lipsync service install|uninstall|status`: the daemon (`lipsync run`) as a systemd
 * user service, so syncing starts at login without the desktop app (like Syncthing's
 * and Maestral's units).
 *
 * The unit goes to $XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user).
 * Tests move it with $LIPSYNC_SYSTEMD_USER_DIR (and may rename it with
 * $LIPSYNC_SYSTEMD_UNIT), so they never touch the user's own units.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { run } from '../engine/proc/run.js';
import { daemonAnswers } from '../engine/api/server.js';
import { defaultDirs } from '../engine/paths.js';
import { LipsyncError } from '../engine/errors.js';

export const SERVICE_ACTIONS = ['install', 'uninstall', 'status'] as const;
export type ServiceAction = (typeof SERVICE_ACTIONS)[number];

export interface ServiceContext {
  env: NodeJS.ProcessEnv;
  /** The unit file's directory. */
  unitDir: string;
  /** `lipsync.service`. */
  unitName: string;
  /** Absolute path of node, and of bin/lipsync.js. */
  node: string;
  bin: string;
  /** LIPSYNC_CONFIG_DIR / LIPSYNC_DATA_DIR for the unit, when set (flag or environment). */
  configDir?: string;
  dataDir?: string;
}

export function serviceContext(
  opts: { configDirFlag?: string; dataDirFlag?: string; env?: NodeJS.ProcessEnv; bin?: string } = {},
): ServiceContext {
  const env = opts.env ?? process.env;
  const unitDir = env.LIPSYNC_SYSTEMD_USER_DIR
    ? resolve(env.LIPSYNC_SYSTEMD_USER_DIR)
    : join(
        env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config'),
        'systemd',
        'user',
      );
  const unitName = `${env.LIPSYNC_SYSTEMD_UNIT || 'lipsync'}.service`;
  if (!/^[A-Za-z0-9:_.\\-]+\.service$/.test(unitName))
    throw new LipsyncError('invalid-settings', `"${unitName}" is not a valid systemd unit name.`, {
      fix: 'Set LIPSYNC_SYSTEMD_UNIT to letters, digits, "-", "_" or "." only (or unset it).',
    });
  const bin = opts.bin ?? binPath();
  const configDir = opts.configDirFlag ?? env.LIPSYNC_CONFIG_DIR;
  const dataDir = opts.dataDirFlag ?? env.LIPSYNC_DATA_DIR;
  return {
    env,
    unitDir,
    unitName,
    node: process.execPath,
    bin,
    configDir: configDir ? resolve(configDir) : undefined,
    dataDir: dataDir ? resolve(dataDir) : undefined,
  };
}

/** bin/lipsync.js, which runs this CLI (process.argv[1]: the launcher execs node on it). */
function binPath(): string {
  const script = process.argv[1];
  if (script && existsSync(script)) {
    const real = realpathSync(script);
    if (real.endsWith('lipsync.js')) return real;
  }
  throw new LipsyncError('invalid-settings', 'Cannot tell where the lipsync command is installed.', {
    fix: 'Run `lipsync service install` through the lipsync command (bin/lipsync), not from another script.',
  });
}

// ---------------------------------------------------------------- the unit file

/**
 * Node's flags for the daemon, as the `lipsync` launcher (bin/lipsync) gives them: semi-spaces of
 * at most 2 MiB and old space grown by half of what is live at each full GC, not up to 4x. The
 * first sync of 100,000 files peaked with ~60 MiB of V8 heap committed (~10 MiB live), ~24 MiB
 * with these, for ~1 s more CPU (bench/first-sync.mjs).
 */
export const NODE_MEMORY_FLAGS = ['--max-semi-space-size=2', '--heap-growing-percent=50'] as const;

/** A word of ExecStart=, quoted: systemd's C-style escapes, `%` specifiers and `$` expansion escaped. */
function execWord(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;
}

/** An `Environment=` assignment, quoted (`%` specifiers escaped; no `$` expansion there). */
function envAssignment(key: string, value: string): string {
  return `Environment="${`${key}=${value}`.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

/** The unit `install` writes. Pure: the same context gives the same text. */
export function renderUnit(c: ServiceContext): string {
  for (const [what, p] of [
    ['node', c.node],
    ['lipsync', c.bin],
    ['the settings directory', c.configDir],
    ['the state directory', c.dataDir],
  ] as const)
    if (p !== undefined && /[\n\r]/.test(p))
      throw new LipsyncError(
        'invalid-settings',
        `The path of ${what} holds a line break: a systemd unit cannot name it.`,
        {
          fix: 'Move it to a path without a line break.',
        },
      );
  const env = [envAssignment('MALLOC_ARENA_MAX', c.env.MALLOC_ARENA_MAX || '2')];
  if (c.configDir) env.push(envAssignment('LIPSYNC_CONFIG_DIR', c.configDir));
  if (c.dataDir) env.push(envAssignment('LIPSYNC_DATA_DIR', c.dataDir));
  return `# Written by \`lipsync service install\`; \`lipsync service uninstall\` removes it.
[Unit]
Description=lipsync: two-way folder sync over SSH (the daemon, lipsync run)

[Service]
Type=simple
ExecStart=${execWord(c.node)} ${NODE_MEMORY_FLAGS.join(' ')} ${execWord(c.bin)} run
Restart=on-failure
RestartSec=10
# The daemon stops its rsync, ssh and watcher children itself on SIGTERM.
TimeoutStopSec=30
# ssh reads ~/.ssh/config and its keys as usual; your login's ssh-agent is not here
# unless your session exports SSH_AUTH_SOCK to systemd (a key without a passphrase works).
${env.join('\n')}

[Install]
WantedBy=default.target
`;
}

// ---------------------------------------------------------------- systemctl

type Reach = { ok: true } | { ok: false; why: string };

/** Is a systemd user instance reachable (`systemctl --user` can talk to it)? */
export async function userSystemd(env: NodeJS.ProcessEnv = process.env): Promise<Reach> {
  try {
    const r = await run('systemctl', ['--user', 'show-environment'], { env, timeoutMs: 10_000 });
    if (r.code === 0) return { ok: true };
    const why = r.stderr.trim().split('\n')[0] || `exit code ${r.code}`;
    return { ok: false, why: `systemctl --user: ${why}` };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      return { ok: false, why: 'systemctl is not installed (no systemd)' };
    throw e;
  }
}

async function systemctl(c: ServiceContext, ...args: string[]) {
  return run('systemctl', ['--user', ...args], { env: c.env, timeoutMs: 60_000 });
}

async function systemctlOk(c: ServiceContext, ...args: string[]): Promise<void> {
  const r = await systemctl(c, ...args);
  if (r.code !== 0)
    throw new LipsyncError(
      'unknown',
      `systemctl --user ${args.join(' ')} failed: ${r.stderr.trim() || `exit code ${r.code}`}`,
      {
        fix: `See \`systemctl --user status ${c.unitName}\` and \`journalctl --user -u ${c.unitName}\`.`,
      },
    );
}

async function linger(c: ServiceContext): Promise<boolean | null> {
  try {
    const r = await run('loginctl', ['show-user', userInfo().username, '--property=Linger', '--value'], {
      env: c.env,
      timeoutMs: 10_000,
    });
    return r.code === 0 ? r.stdout.trim() === 'yes' : null;
  } catch {
    return null;
  }
}

const lingerAdvice = (user: string) =>
  `A user service runs while you are logged in. On a machine without a graphical login (a server),\nlet it start at boot without a login, once:\n  loginctl enable-linger ${user}`;

// ---------------------------------------------------------------- the actions

export interface ServiceOutcome {
  code: number;
  lines: string[];
}

export async function install(c: ServiceContext, opts: { noStart: boolean }): Promise<ServiceOutcome> {
  const file = join(c.unitDir, c.unitName);
  const text = renderUnit(c);
  const before = existsSync(file) ? readFileSync(file, 'utf8') : null;
  mkdirSync(c.unitDir, { recursive: true });
  if (before !== text) {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, file);
  }
  const user = userInfo().username;
  const lines = [
    `${before === null ? 'Wrote' : before === text ? 'Already up to date:' : 'Updated'} ${file}`,
    `  it runs: ${c.node} ${c.bin} run`,
  ];
  const steps = [`systemctl --user daemon-reload`, `systemctl --user enable --now ${c.unitName}`];
  const reach = opts.noStart ? null : await userSystemd(c.env);
  if (!reach || !reach.ok) {
    lines.push(
      reach
        ? `Not started: the systemd user instance is not reachable here (${reach.why}).`
        : 'Not started (--no-start).',
      `To start it now and at every login, run in a login session of ${user}:`,
      ...steps.map((s) => `  ${s}`),
      lingerAdvice(user),
    );
    return { code: 0, lines };
  }
  await systemctlOk(c, 'daemon-reload');
  const active = (await systemctl(c, 'is-active', c.unitName)).stdout.trim() === 'active';
  if (!active && (await daemonAnswers(c.dataDir ?? defaultDirs(c.env).dataDir))) {
    // A daemon started by hand holds the lock: the service's would fail and retry forever.
    await systemctlOk(c, 'enable', c.unitName);
    lines.push(
      `Enabled ${c.unitName}: it starts at your next login.`,
      'Not started now: a lipsync daemon started outside the service is running. To switch to the service now:',
      `  lipsync stop && systemctl --user start ${c.unitName}`,
    );
  } else {
    await systemctlOk(c, 'enable', '--now', c.unitName);
    if (active && before !== text) await systemctlOk(c, 'restart', c.unitName);
    lines.push(
      `Enabled and started ${c.unitName}: it runs now and at every login.`,
      `  its output: journalctl --user -u ${c.unitName}`,
    );
  }
  const l = await linger(c);
  if (l === true) lines.push(`Lingering is on for ${user}: it also starts at boot, without a login.`);
  else lines.push(lingerAdvice(user));
  return { code: 0, lines };
}

export async function status(c: ServiceContext): Promise<ServiceOutcome> {
  const file = join(c.unitDir, c.unitName);
  const installed = existsSync(file);
  const lines = [
    `${c.unitName}: ${installed ? `installed (${file})` : `not installed (no ${file}); see \`lipsync service --help\``}`,
  ];
  if (installed) {
    let current = '';
    try {
      current = renderUnit(c);
    } catch {
      // a path that cannot be written into a unit: install would say so
    }
    if (readFileSync(file, 'utf8') !== current)
      lines.push('  out of date: it differs from what `lipsync service install` writes now (run it again to update)');
  }
  const reach = await userSystemd(c.env);
  if (!reach.ok) {
    lines.push(
      `  enabled: unknown`,
      `  active: unknown`,
      `  (the systemd user instance is not reachable here: ${reach.why})`,
    );
    return { code: 1, lines };
  }
  const enabled = (await systemctl(c, 'is-enabled', c.unitName)).stdout.trim() || 'not-found';
  const active = (await systemctl(c, 'is-active', c.unitName)).stdout.trim() || 'unknown';
  lines.push(`  enabled: ${enabled === 'enabled' ? 'yes' : `no (${enabled})`}`);
  lines.push(`  active: ${active === 'active' ? 'yes' : `no (${active})`}`);
  if (installed && active !== 'active')
    lines.push(`  why: systemctl --user status ${c.unitName}; journalctl --user -u ${c.unitName}`);
  return { code: installed && enabled === 'enabled' && active === 'active' ? 0 : 1, lines };
}

export async function uninstall(c: ServiceContext): Promise<ServiceOutcome> {
  const file = join(c.unitDir, c.unitName);
  const wants = join(c.unitDir, 'default.target.wants', c.unitName);
  const hasWants = (() => {
    try {
      return lstatSync(wants).isSymbolicLink();
    } catch {
      return false;
    }
  })();
  const reach = await userSystemd(c.env);
  if (!existsSync(file) && !hasWants) {
    const loaded = reach.ok && (await systemctl(c, 'is-active', c.unitName)).stdout.trim() === 'active';
    if (!loaded) return { code: 0, lines: [`${c.unitName} is not installed (no ${file}). Nothing to do.`] };
  }
  const lines: string[] = [];
  if (reach.ok) {
    // `disable` of a unit systemd no longer knows fails; stopping is what matters.
    await systemctl(c, 'disable', '--now', c.unitName);
    lines.push(`Stopped and disabled ${c.unitName}.`);
  }
  if (hasWants) rmSync(wants, { force: true });
  rmSync(file, { force: true });
  lines.push(`Removed ${file}.`);
  if (reach.ok) await systemctlOk(c, 'daemon-reload');
  else
    lines.push(
      `The systemd user instance is not reachable here (${reach.why}).`,
      `If the service still runs, stop it in a login session of ${userInfo().username}: systemctl --user stop ${c.unitName}`,
    );
  lines.push('Your pairs and settings are kept; `lipsync run` still runs the daemon by hand.');
  return { code: 0, lines };
}

export async function serviceCommand(
  action: ServiceAction,
  opts: { noStart: boolean; configDirFlag?: string; dataDirFlag?: string },
): Promise<number> {
  if (process.platform !== 'linux')
    throw new LipsyncError('invalid-settings', 'lipsync service writes a systemd user unit: Linux only.', {
      fix: 'Elsewhere, start `lipsync run` at login with your system’s own tool (a LaunchAgent on macOS), or use the desktop app’s “start at login”.',
    });
  const c = serviceContext({ configDirFlag: opts.configDirFlag, dataDirFlag: opts.dataDirFlag });
  const out =
    action === 'install' ? await install(c, opts) : action === 'status' ? await status(c) : await uninstall(c);
  for (const l of out.lines) console.log(l);
  return out.code;
}
