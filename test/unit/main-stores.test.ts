import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Conf from 'conf';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsStore } from '../../electron/engine/config.js';
import {
  APP_PREFS_DEFAULTS,
  appPrefsStoreOptions,
  parseAppPrefs,
  sharedSettingsStoreOptions,
  visibleBounds,
} from '../../electron/main/logic/stores.js';
import { autostartDesktopEntry, startedHidden } from '../../electron/main/logic/autostart.js';

/** What electron-store does with its options before handing them to conf (electron-store/index.js). */
function asElectronStore(o: ReturnType<typeof sharedSettingsStoreOptions>) {
  const { name, ...rest } = o;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return new Conf<Record<string, unknown>>({ ...(rest as any), configName: name, projectName: 'lipsync' });
}

describe('electron-store and the engine share config.json', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lipsync-stores-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('opens the same file with the same schema', () => {
    const engine = new SettingsStore(dir);
    const app = asElectronStore(sharedSettingsStoreOptions(dir));
    expect(app.path).toBe(engine.path);
    expect(app.path).toBe(join(dir, 'config.json'));
  });

  it('sees what the engine writes, and the engine sees a global setting the app writes', () => {
    const engine = new SettingsStore(dir);
    const app = asElectronStore(sharedSettingsStoreOptions(dir));
    engine.write({ ...engine.read(), pairs: [{ ...pairInput() }] as never });
    expect((app.get('pairs') as { id: string }[])[0]!.id).toBe('docs');
    app.set('trashDays', 7);
    expect(engine.read().trashDays).toBe(7);
    expect(engine.read().pairs[0]!.id).toBe('docs');
  });

  it('refuses through the shared schema what the engine would refuse', () => {
    new SettingsStore(dir);
    const app = asElectronStore(sharedSettingsStoreOptions(dir));
    expect(() => app.set('trashDays', 0)).toThrow();
    expect(() => app.set('debounceMs', 'fast')).toThrow();
  });

  it('keeps the app prefs in their own file next to it', () => {
    const prefs = asElectronStore(appPrefsStoreOptions(dir));
    expect(prefs.path).toBe(join(dir, 'app.json'));
    expect(parseAppPrefs(prefs.store)).toEqual(APP_PREFS_DEFAULTS);
    prefs.set('startAtLogin', true);
    expect(() => prefs.set('startAtLogin', 'yes')).toThrow();
  });
});

function pairInput() {
  return {
    id: 'docs',
    local: '/home/me/Documents',
    remote: 'me@host:/srv/docs',
    direction: 'two-way',
    excludes: [],
    bwLimitKBps: 0,
    compression: 'auto',
    paused: false,
    pausedUntil: null,
    rescanIntervalSec: 3600,
  };
}

describe('app prefs', () => {
  it('falls back to defaults field by field', () => {
    expect(parseAppPrefs(null)).toEqual(APP_PREFS_DEFAULTS);
    expect(parseAppPrefs({ startAtLogin: true, windowBounds: { width: 5 } })).toEqual({
      ...APP_PREFS_DEFAULTS,
      startAtLogin: true,
    });
  });

  it('drops window positions on a monitor that is gone', () => {
    const screen = [{ x: 0, y: 0, width: 1920, height: 1080 }];
    expect(visibleBounds({ x: 100, y: 100, width: 800, height: 600 }, screen)).toEqual({
      x: 100,
      y: 100,
      width: 800,
      height: 600,
    });
    expect(visibleBounds({ x: 3000, y: 100, width: 800, height: 600 }, screen)).toEqual({ width: 800, height: 600 });
    expect(visibleBounds(null, screen)).toBeNull();
  });
});

describe('start at login', () => {
  it('writes an XDG autostart entry that starts hidden', () => {
    const entry = autostartDesktopEntry('/home/me/Apps/lipsync 0.1.0.AppImage');
    expect(entry).toContain('[Desktop Entry]');
    expect(entry).toContain('Exec="/home/me/Apps/lipsync 0.1.0.AppImage" --hidden');
    expect(entry).toContain('X-GNOME-Autostart-enabled=true');
    expect(startedHidden(['/usr/bin/lipsync-app', '--hidden'])).toBe(true);
    expect(startedHidden(['/usr/bin/lipsync-app'])).toBe(false);
    expect(startedHidden([], true)).toBe(true);
  });
});
