import type { EngineStatus, PairStatus } from '../../../shared/status.js';
import { SNOOZE_FOREVER, pairName } from '../../../shared/notifications.js';

export { pairName };

/**
 * What the tray shows, derived from the engine's status alone (no Electron here, so
 * it is unit-tested in plain Node). The shell (electron/main/tray.ts) turns the
 * template into `Menu.buildFromTemplate` and the state into an icon file.
 */

export const TRAY_STATES = ['up-to-date', 'syncing', 'paused', 'offline', 'error', 'attention'] as const;
export type TrayState = (typeof TRAY_STATES)[number];

/** Icon variants: dark glyph for light panels, light glyph for dark panels, macOS template (black + alpha). */
export const ICON_VARIANTS = ['light', 'dark', 'template'] as const;
export type IconVariant = (typeof ICON_VARIANTS)[number];

/** The file name of a tray icon in build/tray/ (a `@2x` file next to it holds the 32 px version). */
export function trayIconFile(state: TrayState, variant: IconVariant): string {
  // macOS treats files whose name ends in "Template" as template images.
  return variant === 'template' ? `tray-${state}Template.png` : `tray-${state}-${variant}.png`;
}

/** Which variant to use: template images on macOS, otherwise by the panel's colour scheme. */
export function iconVariantFor(platform: string, darkPanel: boolean): IconVariant {
  if (platform === 'darwin') return 'template';
  return darkPanel ? 'dark' : 'light';
}

const OFFLINE_KINDS = new Set(['host-unreachable']);
const WATCHER_KINDS = new Set(['watcher-died', 'watch-limit']);

/** The pair stopped before deleting many files and waits for `confirm`. */
export function needsConfirmation(p: PairStatus): boolean {
  return p.state === 'paused' && p.reason?.kind === 'cancelled' && /confirm/i.test(p.reason.fix ?? '');
}

/** The pair's local watcher is dead or degraded (changes only found by rescans). */
export function watcherDegraded(p: PairStatus): boolean {
  if (p.state === 'degraded') return true;
  if (p.reason && WATCHER_KINDS.has(p.reason.kind)) return true;
  if (p.warnings.some((w) => WATCHER_KINDS.has(w.kind))) return true;
  // A running, unpaused pair with no watcher at all: nothing notices local changes.
  return (p.state === 'idle' || p.state === 'syncing') && p.watcher === 'none' && p.direction !== 'receive-only';
}

/** The server cannot be reached (it fixes itself when the network is back). */
export function isOffline(p: PairStatus): boolean {
  const kind = p.reason?.kind ?? p.lastError?.kind;
  if (p.state === 'error' && kind !== undefined && OFFLINE_KINDS.has(kind)) return true;
  return p.state !== 'paused' && p.remoteWatcher === 'disconnected';
}

function isError(p: PairStatus): boolean {
  return p.state === 'error' && !isOffline(p);
}

function needsAttention(p: PairStatus): boolean {
  return p.conflicts > 0 || watcherDegraded(p) || needsConfirmation(p);
}

/**
 * One state for the whole app, most important first: error (needs fixing) >
 * attention (a conflict, a degraded watcher, a mass deletion to confirm) > offline
 * (fixes itself) > syncing > paused > up to date. So "up to date" is shown only when
 * every pair is idle with no conflict and a live watcher.
 */
export function trayState(status: EngineStatus): TrayState {
  const ps = status.pairs;
  if (ps.some(isError)) return 'error';
  if (ps.some(needsAttention)) return 'attention';
  if (ps.some(isOffline)) return 'offline';
  if (ps.some((p) => p.state === 'syncing' || p.state === 'starting')) return 'syncing';
  if (ps.some((p) => p.state === 'paused')) return 'paused';
  return 'up-to-date';
}

// ---------------------------------------------------------------- menu

/** What a menu item does, as data: the shell maps each kind to a handler. */
export type TrayAction =
  | { kind: 'sync' }
  | { kind: 'pause'; forMs?: number }
  | { kind: 'resume' }
  | { kind: 'open-folder'; path: string }
  | { kind: 'show'; view: 'conflicts' | 'recent' | 'preferences' | 'status' }
  | { kind: 'open-log' }
  | { kind: 'snooze-notifications'; forMs: number | null }
  | { kind: 'toggle-start-at-login' }
  | { kind: 'quit' };

/** A plain-data menu item (a subset of Electron's MenuItemConstructorOptions plus `action`). */
export interface MenuTemplateItem {
  id?: string;
  label?: string;
  type?: 'normal' | 'separator' | 'submenu' | 'checkbox';
  enabled?: boolean;
  checked?: boolean;
  submenu?: MenuTemplateItem[];
  action?: TrayAction;
}

export interface TrayMenuOptions {
  /** Now, epoch ms (for "paused until 14:30"). */
  now: number;
  /** A "Sync now" started from the menu is still running. */
  syncing?: boolean;
  startAtLogin: boolean;
  /** Notifications snoozed until this epoch ms (SNOOZE_FOREVER: until turned back on); null: not snoozed. */
  notificationsSnoozedUntil: number | null;
}

export const PAUSE_CHOICES: { label: string; forMs?: number }[] = [
  { label: '30 minutes', forMs: 30 * 60_000 },
  { label: '1 hour', forMs: 60 * 60_000 },
  { label: '8 hours', forMs: 8 * 60 * 60_000 },
  { label: 'Until resumed' },
];

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function hhmm(t: number): string {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** The one line at the top of the menu (also the tray tooltip). */
export function statusLine(status: EngineStatus, now: number): string {
  const ps = status.pairs;
  if (!ps.length) return 'No folders synced yet';
  const state = trayState(status);
  const names = (xs: PairStatus[]) => xs.map(pairName).join(', ');
  switch (state) {
    case 'error': {
      const bad = ps.filter(isError);
      const first = bad[0]!;
      const why = first.reason?.message ?? first.lastError?.message ?? 'sync failed';
      return bad.length === 1 ? `Error in ${pairName(first)}: ${why}` : `Errors in ${names(bad)}`;
    }
    case 'attention': {
      const conflicts = ps.reduce((n, p) => n + p.conflicts, 0);
      const withConflicts = ps.filter((p) => p.conflicts > 0);
      if (conflicts > 0)
        return `${plural(conflicts, 'conflict')} in ${withConflicts.length === 1 ? pairName(withConflicts[0]!) : plural(withConflicts.length, 'folder')}`;
      const confirm = ps.filter(needsConfirmation);
      if (confirm.length) return `${names(confirm)}: many deletions wait for your confirmation`;
      return `Watching is degraded in ${names(ps.filter(watcherDegraded))} (rescans still sync)`;
    }
    case 'offline':
      return `Offline: cannot reach the server of ${names(ps.filter(isOffline))}`;
    case 'syncing': {
      const active = ps.filter((p) => p.state === 'syncing' || p.state === 'starting');
      const prog = active.map((p) => p.progress).filter((x) => x !== undefined);
      const total = prog.reduce((n, x) => n + x.filesTotal, 0);
      const done = prog.reduce((n, x) => n + x.filesDone, 0);
      const what = total > 0 ? ` (${done} of ${plural(total, 'file')})` : '';
      return `Syncing ${names(active)}…${what}`;
    }
    case 'paused': {
      const paused = ps.filter((p) => p.state === 'paused');
      const untils = paused.map((p) => p.pausedUntil);
      const until =
        untils.every((u) => u !== null && u > now) && untils.length
          ? ` until ${hhmm(Math.max(...(untils as number[])))}`
          : '';
      return paused.length === ps.length ? `Paused${until}` : `${names(paused)} paused${until}`;
    }
    case 'up-to-date':
      return `Up to date (${plural(ps.length, 'folder')})`;
  }
}

/**
 * The tray menu, complete on its own: Linux app indicators drop clicks on the icon,
 * so everything the tray offers is reachable from this menu.
 */
export function trayMenuTemplate(status: EngineStatus, opts: TrayMenuOptions): MenuTemplateItem[] {
  const ps = status.pairs;
  const syncing = !!opts.syncing || ps.some((p) => p.state === 'syncing');
  const anyRunning = ps.some((p) => p.state !== 'paused');
  const anyPaused = ps.some((p) => p.state === 'paused');
  const conflicts = ps.reduce((n, p) => n + p.conflicts, 0);
  const snoozedUntil = opts.notificationsSnoozedUntil;
  const snoozed = snoozedUntil !== null && snoozedUntil > opts.now;
  const sep: MenuTemplateItem = { type: 'separator' };

  return [
    { id: 'status', label: statusLine(status, opts.now), enabled: false },
    sep,
    {
      id: 'sync',
      label: syncing ? 'Syncing…' : 'Sync now',
      enabled: !syncing && ps.length > 0 && anyRunning,
      action: { kind: 'sync' },
    },
    {
      id: 'pause',
      label: 'Pause',
      type: 'submenu',
      enabled: anyRunning && ps.length > 0,
      submenu: PAUSE_CHOICES.map((c) => ({
        label: c.label,
        action: c.forMs === undefined ? { kind: 'pause' } : { kind: 'pause', forMs: c.forMs },
      })),
    },
    { id: 'resume', label: 'Resume', enabled: anyPaused, action: { kind: 'resume' } },
    sep,
    {
      id: 'open-folder',
      label: 'Open folder',
      type: 'submenu',
      enabled: ps.length > 0,
      submenu: ps.map((p) => ({
        label: `${pairName(p)} — ${p.local}`,
        action: { kind: 'open-folder', path: p.local },
      })),
    },
    {
      id: 'conflicts',
      label: `Conflicts (${conflicts})`,
      enabled: conflicts > 0,
      action: { kind: 'show', view: 'conflicts' },
    },
    { id: 'recent', label: 'Recent changes', action: { kind: 'show', view: 'recent' } },
    { id: 'open-log', label: 'Open the log', action: { kind: 'open-log' } },
    sep,
    {
      id: 'notifications',
      label: 'Notifications',
      type: 'submenu',
      submenu:
        snoozed && snoozedUntil !== null
          ? [
              {
                label:
                  snoozedUntil >= SNOOZE_FOREVER ? 'Snoozed until turned on' : `Snoozed until ${hhmm(snoozedUntil)}`,
                enabled: false,
              },
              { label: 'Turn on now', action: { kind: 'snooze-notifications', forMs: null } },
            ]
          : [
              { label: 'Snooze for 1 hour', action: { kind: 'snooze-notifications', forMs: 60 * 60_000 } },
              { label: 'Snooze for 8 hours', action: { kind: 'snooze-notifications', forMs: 8 * 60 * 60_000 } },
              { label: 'Snooze until turned on', action: { kind: 'snooze-notifications', forMs: SNOOZE_FOREVER } },
            ],
    },
    {
      id: 'start-at-login',
      label: 'Start at login',
      type: 'checkbox',
      checked: opts.startAtLogin,
      action: { kind: 'toggle-start-at-login' },
    },
    { id: 'preferences', label: 'Preferences…', action: { kind: 'show', view: 'preferences' } },
    sep,
    { id: 'quit', label: 'Quit lipsync', action: { kind: 'quit' } },
  ];
}
