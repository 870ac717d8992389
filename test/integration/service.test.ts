/**
 * `lipsync service install|uninstall|status` through the real command. The unit
 * directory is a temporary one ($LIPSYNC_SYSTEMD_USER_DIR, or $XDG_CONFIG_HOME), so
 * these tests never touch the user's own units. Where no systemd user instance is
 * reachable (as on our build machines) the test that starts the service is skipped
 * with its reason, and what the command says for that case is tested instead.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { BIN, cli, makeCliEnv, requireBuild, waitFor, type CliEnv } from '../support/cli.js';
import { userSystemd } from '../../electron/cli/service.js';
import { NODE_MEMORY_FLAGS } from '../../electron/cli/service.js';

let reach: Awaited<ReturnType<typeof userSystemd>>;

beforeAll(async () => {
  requireBuild();
  reach = await userSystemd();
});

/** A CLI environment whose unit directory is a fresh temporary one. */
function serviceEnv(extra: NodeJS.ProcessEnv = {}): CliEnv & { unitDir: string; unitFile: string } {
  const unitDir = join(mkdtempSync(join(tmpdir(), 'lipsync-units-')), 'systemd', 'user');
  const e = makeCliEnv({ extraEnv: { LIPSYNC_SYSTEMD_USER_DIR: unitDir, ...extra } });
  return { ...e, unitDir, unitFile: join(unitDir, 'lipsync.service') };
}

describe('lipsync service install writes a systemd user unit', () => {
  it('running this node and this lipsync, with the settings and state directories', async () => {
    const e = serviceEnv();
    const r = await cli(e, ['service', 'install', '--no-start']);
    expect(r.code, r.stderr).toBe(0);
    const unit = readFileSync(e.unitFile, 'utf8');
    // node's memory flags (bin/lipsync has the same) come before the script.
    expect(unit).toContain(
      `ExecStart="${process.execPath}" ${NODE_MEMORY_FLAGS.join(' ')} "${realpathSync(BIN)}" run\n`,
    );
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^WantedBy=default\.target$/m);
    expect(unit).toContain(`Environment="LIPSYNC_CONFIG_DIR=${e.configDir}"`);
    expect(unit).toContain(`Environment="LIPSYNC_DATA_DIR=${e.dataDir}"`);
    expect(lstatSync(e.unitFile).mode & 0o777).toBe(0o644);
    // It says what it wrote and exactly what to run to start it.
    expect(r.stdout).toContain(`Wrote ${e.unitFile}`);
    expect(r.stdout).toContain('Not started (--no-start).');
    expect(r.stdout).toContain('  systemctl --user daemon-reload\n  systemctl --user enable --now lipsync.service\n');
    expect(r.stdout).toContain(`loginctl enable-linger ${userInfo().username}`);
    // Again: nothing changes.
    const again = await cli(e, ['service', 'install', '--no-start']);
    expect(again.stdout).toContain(`Already up to date: ${e.unitFile}`);
    expect(readFileSync(e.unitFile, 'utf8')).toBe(unit);
  });

  it('--config-dir/--data-dir go into the unit; without them and their variables, none', async () => {
    const e = serviceEnv();
    const flags = await cli(e, ['service', 'install', '--no-start', '--config-dir', join(e.dir, 'other-config')]);
    expect(flags.code, flags.stderr).toBe(0);
    expect(readFileSync(e.unitFile, 'utf8')).toContain(
      `Environment="LIPSYNC_CONFIG_DIR=${join(e.dir, 'other-config')}"`,
    );
    const plain = { ...e, env: { ...e.env, LIPSYNC_CONFIG_DIR: '', LIPSYNC_DATA_DIR: '' } };
    const r = await cli(plain, ['service', 'install', '--no-start']);
    expect(r.stdout).toContain(`Updated ${e.unitFile}`);
    expect(readFileSync(e.unitFile, 'utf8')).not.toMatch(/LIPSYNC_(CONFIG|DATA)_DIR/);
  });

  it('by default under $XDG_CONFIG_HOME/systemd/user', async () => {
    const xdg = mkdtempSync(join(tmpdir(), 'lipsync-xdg-'));
    const e = makeCliEnv({ extraEnv: { XDG_CONFIG_HOME: xdg, LIPSYNC_SYSTEMD_USER_DIR: '' } });
    const r = await cli(e, ['service', 'install', '--no-start']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(xdg, 'systemd', 'user', 'lipsync.service'))).toBe(true);
  });

  it('where no systemd user instance is reachable: says so and what to run; status and uninstall too', async (ctx) => {
    if (reach.ok) {
      console.log('skipped: a systemd user instance is reachable here; this covers machines without one');
      ctx.skip('a systemd user instance is reachable here');
    }
    const e = serviceEnv();
    const r = await cli(e, ['service', 'install']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(e.unitFile)).toBe(true);
    expect(r.stdout).toContain(
      `Not started: the systemd user instance is not reachable here (${reach.ok ? '' : reach.why}).`,
    );
    expect(r.stdout).toContain(`To start it now and at every login, run in a login session of ${userInfo().username}:`);
    expect(r.stdout).toContain('  systemctl --user daemon-reload\n  systemctl --user enable --now lipsync.service\n');
    expect(r.stdout).toMatch(/without a graphical login[\s\S]*loginctl enable-linger/);

    const st = await cli(e, ['service', 'status']);
    expect(st.code).toBe(1);
    expect(st.stdout).toContain(`lipsync.service: installed (${e.unitFile})`);
    expect(st.stdout).toContain('enabled: unknown');
    expect(st.stdout).toContain('active: unknown');
    expect(st.stdout).toContain('not reachable here');

    // As `systemctl --user enable` would have left it: the link that starts it at login.
    mkdirSync(join(e.unitDir, 'default.target.wants'));
    symlinkSync(e.unitFile, join(e.unitDir, 'default.target.wants', 'lipsync.service'));
    const un = await cli(e, ['service', 'uninstall']);
    expect(un.code, un.stderr).toBe(0);
    expect(existsSync(e.unitFile)).toBe(false);
    expect(existsSync(join(e.unitDir, 'default.target.wants', 'lipsync.service'))).toBe(false);
    expect(un.stdout).toContain(`Removed ${e.unitFile}.`);
    expect(un.stdout).toContain('systemctl --user stop lipsync.service');

    const none = await cli(e, ['service', 'status']);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('lipsync.service: not installed');
    const again = await cli(e, ['service', 'uninstall']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('is not installed');
  });

  it('where a systemd user instance runs: install starts the daemon, status says so, uninstall stops it', async (ctx) => {
    // It registers a throwaway unit with the user's own systemd (its "enable" link lands in
    // ~/.config/systemd/user), so it runs only when asked for.
    const why = !reach.ok
      ? `no systemd user instance is reachable here (${reach.why})`
      : process.env.LIPSYNC_TEST_SYSTEMD_USER !== '1'
        ? 'set LIPSYNC_TEST_SYSTEMD_USER=1 to let it install a throwaway unit with your user systemd'
        : null;
    if (why) {
      console.log(`skipped: service start under systemd: ${why}`);
      ctx.skip(why);
    }
    const name = `lipsync-test-${process.pid}`;
    const e = makeCliEnv({ extraEnv: { LIPSYNC_SYSTEMD_UNIT: name, LIPSYNC_SYSTEMD_USER_DIR: '' } });
    try {
      const r = await cli(e, ['service', 'install']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`Enabled and started ${name}.service`);
      await waitFor(async () => (await cli(e, ['status', '--json'])).stdout.includes('"daemon": true'), 20_000);
      const st = await cli(e, ['service', 'status']);
      expect(st.stdout).toContain('enabled: yes');
      expect(st.stdout).toContain('active: yes');
      expect(st.code).toBe(0);
    } finally {
      const un = await cli(e, ['service', 'uninstall']);
      expect(un.code, un.stdout + un.stderr).toBe(0);
    }
    await waitFor(async () => (await cli(e, ['status', '--json'])).stdout.includes('"daemon": false'), 20_000);
  });
});
