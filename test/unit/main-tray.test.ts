import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EngineStatus, PairStatus } from '../../shared/status.js';
import {
  ICON_VARIANTS,
  TRAY_STATES,
  iconVariantFor,
  statusLine,
  trayIconFile,
  trayMenuTemplate,
  trayState,
  type MenuTemplateItem,
  type TrayMenuOptions,
  type TrayState,
} from '../../electron/main/logic/tray.js';
import { SNOOZE_FOREVER } from '../../shared/notifications.js';

const NOW = new Date(2025, 0, 15, 12, 0, 0).getTime();

function pair(over: Partial<PairStatus> = {}): PairStatus {
  return {
    id: 'documents',
    local: '/home/me/Documents',
    remote: 'me@server:/srv/documents',
    direction: 'two-way',
    state: 'idle',
    pausedUntil: null,
    watcher: 'inotifywait',
    remoteWatcher: 'inotify',
    conflicts: 0,
    entries: 10,
    pending: 0,
    lastSyncAt: NOW - 1000,
    warnings: [],
    ...over,
  };
}
const status = (...pairs: PairStatus[]): EngineStatus => ({ pid: 1, version: '0.1.0', startedAt: 0, pairs });
const opts = (over: Partial<TrayMenuOptions> = {}): TrayMenuOptions => ({
  now: NOW,
  startAtLogin: false,
  notificationsSnoozedUntil: null,
  ...over,
});
const byId = (items: MenuTemplateItem[], id: string) => items.find((i) => i.id === id)!;

/** One example status per tray state. */
const EXAMPLES: Record<TrayState, EngineStatus> = {
  'up-to-date': status(pair(), pair({ id: 'photos', local: '/home/me/Photos' })),
  syncing: status(pair({ state: 'syncing', progress: { filesDone: 3, filesTotal: 12, bytesDone: 1, rateBps: 1 } })),
  paused: status(
    pair({ state: 'paused', pausedUntil: NOW + 30 * 60_000, reason: { kind: 'cancelled', message: 'Paused' } }),
  ),
  offline: status(pair({ state: 'error', lastError: { kind: 'host-unreachable', message: 'Cannot reach server.' } })),
  error: status(pair({ state: 'error', reason: { kind: 'auth-failed', message: 'The server refused the key.' } })),
  attention: status(pair({ conflicts: 1 })),
};

describe('trayState', () => {
  it.each(TRAY_STATES)('maps an example status to %s', (state) => {
    expect(trayState(EXAMPLES[state])).toBe(state);
  });

  it('is up to date with no pairs', () => {
    expect(trayState(status())).toBe('up-to-date');
    expect(statusLine(status(), NOW)).toBe('No folders synced yet');
  });

  it('is never up to date while a conflict is open, whatever the pair is doing', () => {
    for (const state of ['idle', 'syncing', 'paused', 'starting', 'degraded'] as const) {
      const s = status(pair({ state, conflicts: 2 }), pair({ id: 'photos', local: '/p' }));
      expect(trayState(s)).not.toBe('up-to-date');
      expect(trayState(s)).toBe('attention');
    }
  });

  it('needs attention when a watcher is degraded or dead', () => {
    expect(trayState(status(pair({ state: 'degraded' })))).toBe('attention');
    // degraded but syncing at the moment (the pair reports 'syncing' over 'degraded')
    expect(
      trayState(status(pair({ state: 'syncing', reason: { kind: 'watcher-died', message: 'inotifywait died' } }))),
    ).toBe('attention');
    expect(trayState(status(pair({ warnings: [{ kind: 'watch-limit', message: 'limit' }] })))).toBe('attention');
    // running, not paused, no watcher at all
    expect(trayState(status(pair({ watcher: 'none' })))).toBe('attention');
    // receive-only pairs need no local watcher
    expect(trayState(status(pair({ watcher: 'none', direction: 'receive-only' })))).toBe('up-to-date');
  });

  it('needs attention when a mass deletion waits for confirmation', () => {
    const s = status(
      pair({
        state: 'paused',
        reason: {
          kind: 'cancelled',
          message: 'This sync would delete 900 of 1000 files',
          fix: 'run `lipsync confirm documents`',
        },
      }),
    );
    expect(trayState(s)).toBe('attention');
    expect(statusLine(s, NOW)).toMatch(/confirmation/);
  });

  it('puts error above attention, attention above offline, offline above syncing, syncing above paused', () => {
    const err = pair({ id: 'a', state: 'error', reason: { kind: 'disk-full', message: 'full' } });
    const conflict = pair({ id: 'b', conflicts: 1 });
    const offline = pair({ id: 'c', remoteWatcher: 'disconnected' });
    const syncing = pair({ id: 'd', state: 'syncing' });
    const paused = pair({ id: 'e', state: 'paused' });
    expect(trayState(status(err, conflict, offline, syncing, paused))).toBe('error');
    expect(trayState(status(conflict, offline, syncing, paused))).toBe('attention');
    expect(trayState(status(offline, syncing, paused))).toBe('offline');
    expect(trayState(status(syncing, paused))).toBe('syncing');
    expect(trayState(status(paused, pair({ id: 'f' })))).toBe('paused');
  });

  it('a paused pair whose server feed is down is paused, not offline', () => {
    expect(trayState(status(pair({ state: 'paused', remoteWatcher: 'disconnected' })))).toBe('paused');
  });
});

describe('tray icons', () => {
  it('picks template images on macOS and the panel variant elsewhere', () => {
    expect(iconVariantFor('darwin', true)).toBe('template');
    expect(iconVariantFor('linux', true)).toBe('dark');
    expect(iconVariantFor('win32', false)).toBe('light');
    expect(trayIconFile('error', 'template')).toBe('tray-errorTemplate.png');
    expect(trayIconFile('error', 'dark')).toBe('tray-error-dark.png');
  });

  it('has a 16 px and a 32 px (@2x) PNG for every state and variant in build/tray', () => {
    const dir = join(import.meta.dirname, '../../build/tray');
    for (const state of TRAY_STATES) {
      for (const variant of ICON_VARIANTS) {
        const file = join(dir, trayIconFile(state, variant));
        for (const [f, size] of [
          [file, 16],
          [file.replace(/\.png$/, '@2x.png'), 32],
        ] as const) {
          expect(existsSync(f), f).toBe(true);
          const png = readFileSync(f);
          expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
          expect(png.readUInt32BE(16)).toBe(size); // IHDR width
          expect(png.readUInt32BE(20)).toBe(size); // IHDR height
        }
      }
    }
    const icon = readFileSync(join(dir, '../icon.png'));
    expect(icon.readUInt32BE(16)).toBe(512);
  });
});

describe('trayMenuTemplate', () => {
  it.each(TRAY_STATES)('is complete on its own in state %s', (state) => {
    const items = trayMenuTemplate(EXAMPLES[state], opts());
    const ids = items.map((i) => i.id).filter(Boolean);
    expect(ids).toEqual([
      'status',
      'sync',
      'pause',
      'resume',
      'open-folder',
      'conflicts',
      'recent',
      'open-log',
      'notifications',
      'start-at-login',
      'preferences',
      'quit',
    ]);
    expect(byId(items, 'status').enabled).toBe(false);
    expect(byId(items, 'status').label).toBe(statusLine(EXAMPLES[state], NOW));
    expect(byId(items, 'quit').action).toEqual({ kind: 'quit' });
    expect(byId(items, 'preferences')).toMatchObject({
      label: 'Preferences…',
      action: { kind: 'show', view: 'preferences' },
    });
    // plain data: survives JSON (no functions)
    expect(JSON.parse(JSON.stringify(items))).toEqual(items);
  });

  it('status lines say what is going on', () => {
    expect(statusLine(EXAMPLES['up-to-date'], NOW)).toBe('Up to date (2 folders)');
    expect(statusLine(EXAMPLES.syncing, NOW)).toBe('Syncing Documents… (3 of 12 files)');
    expect(statusLine(EXAMPLES.paused, NOW)).toBe('Paused until 12:30');
    expect(statusLine(EXAMPLES.offline, NOW)).toMatch(/^Offline/);
    expect(statusLine(EXAMPLES.error, NOW)).toBe('Error in Documents: The server refused the key.');
    expect(statusLine(EXAMPLES.attention, NOW)).toBe('1 conflict in Documents');
  });

  it('shows "Syncing…" (disabled) while a sync runs, "Sync now" otherwise', () => {
    expect(byId(trayMenuTemplate(EXAMPLES['up-to-date'], opts()), 'sync')).toMatchObject({
      label: 'Sync now',
      enabled: true,
      action: { kind: 'sync' },
    });
    expect(byId(trayMenuTemplate(EXAMPLES.syncing, opts()), 'sync')).toMatchObject({
      label: 'Syncing…',
      enabled: false,
    });
    expect(byId(trayMenuTemplate(EXAMPLES['up-to-date'], opts({ syncing: true })), 'sync')).toMatchObject({
      label: 'Syncing…',
      enabled: false,
    });
  });

  it('offers pause for 30 min, 1 h, 8 h and until resumed; resume only when paused', () => {
    const items = trayMenuTemplate(EXAMPLES['up-to-date'], opts());
    const pause = byId(items, 'pause');
    expect(pause.type).toBe('submenu');
    expect(pause.submenu!.map((i) => [i.label, i.action])).toEqual([
      ['30 minutes', { kind: 'pause', forMs: 30 * 60_000 }],
      ['1 hour', { kind: 'pause', forMs: 3_600_000 }],
      ['8 hours', { kind: 'pause', forMs: 8 * 3_600_000 }],
      ['Until resumed', { kind: 'pause' }],
    ]);
    expect(byId(items, 'resume').enabled).toBe(false);
    const paused = trayMenuTemplate(EXAMPLES.paused, opts());
    expect(byId(paused, 'resume')).toMatchObject({ enabled: true, action: { kind: 'resume' } });
    expect(byId(paused, 'pause').enabled).toBe(false);
  });

  it('lists each pair under Open folder and counts conflicts', () => {
    const s = status(pair({ conflicts: 2 }), pair({ id: 'photos', local: '/home/me/Photos', conflicts: 1 }));
    const items = trayMenuTemplate(s, opts());
    expect(byId(items, 'open-folder').submenu).toEqual([
      { label: 'Documents — /home/me/Documents', action: { kind: 'open-folder', path: '/home/me/Documents' } },
      { label: 'Photos — /home/me/Photos', action: { kind: 'open-folder', path: '/home/me/Photos' } },
    ]);
    expect(byId(items, 'conflicts')).toMatchObject({ label: 'Conflicts (3)', enabled: true });
    expect(byId(trayMenuTemplate(EXAMPLES['up-to-date'], opts()), 'conflicts')).toMatchObject({
      label: 'Conflicts (0)',
      enabled: false,
    });
    expect(byId(items, 'recent').action).toEqual({ kind: 'show', view: 'recent' });
  });

  it('shows start at login as a checkbox and the notification snooze', () => {
    const items = trayMenuTemplate(EXAMPLES['up-to-date'], opts({ startAtLogin: true }));
    expect(byId(items, 'start-at-login')).toMatchObject({ type: 'checkbox', checked: true });
    expect(byId(items, 'notifications').submenu!.map((i) => i.label)).toEqual([
      'Snooze for 1 hour',
      'Snooze for 8 hours',
      'Snooze until turned on',
    ]);
    const snoozed = trayMenuTemplate(EXAMPLES['up-to-date'], opts({ notificationsSnoozedUntil: NOW + 3_600_000 }));
    expect(byId(snoozed, 'notifications').submenu!.map((i) => i.label)).toEqual(['Snoozed until 13:00', 'Turn on now']);
    const forever = trayMenuTemplate(EXAMPLES['up-to-date'], opts({ notificationsSnoozedUntil: SNOOZE_FOREVER }));
    expect(byId(forever, 'notifications').submenu![0]!.label).toBe('Snoozed until turned on');
  });

  it('disables pair actions when there are no pairs', () => {
    const items = trayMenuTemplate(status(), opts());
    expect(byId(items, 'sync').enabled).toBe(false);
    expect(byId(items, 'open-folder').enabled).toBe(false);
    expect(byId(items, 'pause').enabled).toBe(false);
  });
});
