/**
 * The systemd user unit `lipsync service install` writes: what it runs, with which
 * environment, and paths quoted so systemd reads them back exactly.
 */
import { describe, expect, it } from 'vitest';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { renderUnit, serviceContext } from '../../electron/cli/service.js';

const bin = '/opt/lipsync/bin/lipsync.js';

describe('the lipsync service unit', () => {
  it('goes to $XDG_CONFIG_HOME/systemd/user (default ~/.config), or $LIPSYNC_SYSTEMD_USER_DIR', () => {
    expect(serviceContext({ env: {}, bin }).unitDir).toBe(join(homedir(), '.config', 'systemd', 'user'));
    expect(serviceContext({ env: { XDG_CONFIG_HOME: '/x/cfg' }, bin }).unitDir).toBe('/x/cfg/systemd/user');
    // A relative XDG_CONFIG_HOME is invalid per the XDG spec: ignored, as systemd does.
    expect(serviceContext({ env: { XDG_CONFIG_HOME: 'rel' }, bin }).unitDir).toBe(
      join(homedir(), '.config', 'systemd', 'user'),
    );
    const c = serviceContext({ env: { XDG_CONFIG_HOME: '/x/cfg', LIPSYNC_SYSTEMD_USER_DIR: '/t/units' }, bin });
    expect(c.unitDir).toBe('/t/units');
    expect(c.unitName).toBe('lipsync.service');
    expect(() => serviceContext({ env: { LIPSYNC_SYSTEMD_UNIT: 'a b' }, bin })).toThrow(
      /not a valid systemd unit name/,
    );
  });

  it('runs this node and this lipsync, restarts on failure, starts with the login session', () => {
    const unit = renderUnit(serviceContext({ env: {}, bin }));
    expect(unit).toContain(
      `ExecStart="${process.execPath}" --max-semi-space-size=2 --heap-growing-percent=50 "${bin}" run\n`,
    );
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^WantedBy=default\.target$/m);
    expect(unit).toMatch(/^Environment="MALLOC_ARENA_MAX=2"$/m);
    expect(unit).not.toContain('LIPSYNC_CONFIG_DIR');
    expect(unit).not.toContain('LIPSYNC_DATA_DIR');
  });

  it('carries the settings and state directories when they are set (flags before the environment)', () => {
    const fromEnv = renderUnit(
      serviceContext({
        env: { LIPSYNC_CONFIG_DIR: '/c/cfg', LIPSYNC_DATA_DIR: '/c/data', MALLOC_ARENA_MAX: '4' },
        bin,
      }),
    );
    expect(fromEnv).toMatch(/^Environment="LIPSYNC_CONFIG_DIR=\/c\/cfg"$/m);
    expect(fromEnv).toMatch(/^Environment="LIPSYNC_DATA_DIR=\/c\/data"$/m);
    expect(fromEnv).toMatch(/^Environment="MALLOC_ARENA_MAX=4"$/m);
    const fromFlag = renderUnit(
      serviceContext({ env: { LIPSYNC_CONFIG_DIR: '/c/cfg' }, configDirFlag: '/flag/cfg', bin }),
    );
    expect(fromFlag).toMatch(/^Environment="LIPSYNC_CONFIG_DIR=\/flag\/cfg"$/m);
  });

  it('quotes what systemd would expand or split: spaces, quotes, backslashes, % and $', () => {
    const c = serviceContext({ env: { LIPSYNC_DATA_DIR: '/d/100% "x"' }, bin: '/my apps/$HOME/li\\psync.js' });
    const unit = renderUnit(c);
    expect(unit).toContain(`"/my apps/$$HOME/li\\\\psync.js" run`);
    expect(unit).toContain('Environment="LIPSYNC_DATA_DIR=/d/100%% \\"x\\""');
  });

  it('refuses a path with a line break, which a unit cannot hold', () => {
    expect(() => renderUnit(serviceContext({ env: { LIPSYNC_DATA_DIR: '/a\nb' }, bin }))).toThrow(/line break/);
  });
});
