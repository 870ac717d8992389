import { describe, expect, it, vi } from 'vitest';
import type { EngineStatus } from '../../shared/status.js';

// The one seam: electron/main/electron-seam.ts. Nothing else from Electron is mocked or loaded.
const h = vi.hoisted(() => {
  const built: unknown[] = [];
  const trays: { image: string; tooltip: string; menu: unknown }[] = [];
  return { built, trays, dark: { value: true } };
});
vi.mock('../../electron/main/electron-seam.js', () => {
  class Tray {
    state = { image: '', tooltip: '', menu: null as unknown };
    constructor(img: { path: string }) {
      this.state.image = img.path;
      h.trays.push(this.state);
    }
    setImage(img: { path: string }) {
      this.state.image = img.path;
    }
    setToolTip(t: string) {
      this.state.tooltip = t;
    }
    setContextMenu(m: unknown) {
      this.state.menu = m;
    }
    on() {}
    destroy() {}
  }
  return {
    Tray,
    Menu: { buildFromTemplate: (t: unknown) => (h.built.push(t), t) },
    nativeImage: { createFromPath: (path: string) => ({ path, setTemplateImage: () => undefined }) },
    nativeTheme: {
      get shouldUseDarkColors() {
        return h.dark.value;
      },
      on: () => undefined,
    },
  };
});

const { TrayController, toElectronMenu } = await import('../../electron/main/tray.js');

const idle: EngineStatus = {
  pid: 1,
  version: '0.1.0',
  startedAt: 0,
  pairs: [
    {
      id: 'docs',
      local: '/home/me/Documents',
      remote: 'h:/d',
      direction: 'two-way',
      state: 'idle',
      pausedUntil: null,
      watcher: 'inotifywait',
      remoteWatcher: 'inotify',
      conflicts: 0,
      entries: 1,
      pending: 0,
      lastSyncAt: null,
      warnings: [],
    },
  ],
};
const withConflict: EngineStatus = { ...idle, pairs: [{ ...idle.pairs[0]!, conflicts: 1 }] };
const opts = { now: 0, startAtLogin: false, notificationsSnoozedUntil: null };

describe('TrayController (Electron mocked at the seam)', () => {
  it('shows the icon of the state and rebuilds the menu when it changes', () => {
    vi.useFakeTimers();
    const run = vi.fn();
    const tc = new TrayController('/icons', run, () => undefined);
    const tray = h.trays.at(-1)!;
    tc.update(idle, opts);
    expect(tray.image).toBe(
      process.platform === 'darwin' ? '/icons/tray-up-to-dateTemplate.png' : '/icons/tray-up-to-date-dark.png',
    );
    expect(tray.tooltip).toBe('lipsync — Up to date (1 folder)');
    tc.update(withConflict, opts);
    vi.advanceTimersByTime(500);
    expect(tray.image).toMatch(/tray-attention/);
    expect(tray.tooltip).toBe('lipsync — 1 conflict in Documents');
    const built = h.built.length;
    tc.update(withConflict, opts); // nothing changed: no rebuild
    vi.advanceTimersByTime(500);
    expect(h.built.length).toBe(built);
    tc.destroy();
    vi.useRealTimers();
  });

  it('wires menu items to actions', () => {
    const run = vi.fn();
    const menu = toElectronMenu(
      [
        {
          label: 'Pause',
          type: 'submenu',
          submenu: [{ label: '1 hour', action: { kind: 'pause', forMs: 3_600_000 } }],
        },
      ],
      run,
    );
    const sub = menu[0]!.submenu as { click: () => void }[];
    sub[0]!.click();
    expect(run).toHaveBeenCalledWith({ kind: 'pause', forMs: 3_600_000 });
  });
});
