import { z } from 'zod';
import { SettingsSchema } from '../../../shared/settings.js';

/**
 * Two electron-store files, both in the engine's config dir (~/.config/lipsync):
 *
 * 1. config.json — the SAME file as the engine's settings. How they agree:
 *    electron/engine/config.ts reads and writes configDir/config.json as `conf` (the
 *    library electron-store is built on) does (tab-indented JSON, mode 0600, atomic
 *    rename), validated with the zod schema; electron-store's `name` becomes conf's
 *    `configName` and an absolute `cwd` is used as is, so `{ cwd: configDir, name:
 *    'config' }` is the same path. The shell's JSON schema is derived from the same zod
 *    schema (shared/settings.ts, `z.toJSONSchema(SettingsSchema, { io: 'input' })
 *    .properties`), so both validate alike. Writes are whole-file atomic renames; the engine's SettingsStore
 *    stays the only writer of `pairs` (the shell writes only top-level keys, validated
 *    with SettingsSchema first). test/unit/main-stores.test.ts checks the paths agree.
 *
 * 2. app.json — the desktop app's own prefs (window bounds, notification snooze,
 *    start at login), which the engine and the CLI never read.
 */

export const SHARED_SETTINGS_NAME = 'config';
export const APP_PREFS_NAME = 'app';

export function settingsJsonSchema(): Record<string, unknown> {
  const json = z.toJSONSchema(SettingsSchema, { io: 'input' }) as { properties: Record<string, unknown> };
  return json.properties;
}

export interface StoreOptions {
  cwd: string;
  name: string;
  schema: Record<string, unknown>;
  configFileMode: number;
  clearInvalidConfig: false;
  defaults?: Record<string, unknown>;
}

/** electron-store options for the settings file the engine also uses. */
export function sharedSettingsStoreOptions(configDir: string): StoreOptions {
  return {
    cwd: configDir,
    name: SHARED_SETTINGS_NAME,
    schema: settingsJsonSchema(),
    configFileMode: 0o600,
    clearInvalidConfig: false,
  };
}

export interface WindowBounds {
  x?: number;
  y?: number;
  width: number;
  height: number;
}

export interface AppPrefs {
  windowBounds: WindowBounds | null;
  /** Epoch ms; SNOOZE_FOREVER = until turned back on; null = not snoozed. */
  notificationsSnoozedUntil: number | null;
  startAtLogin: boolean;
}

export const APP_PREFS_DEFAULTS: AppPrefs = {
  windowBounds: null,
  notificationsSnoozedUntil: null,
  startAtLogin: false,
};

const AppPrefsSchema = z.object({
  windowBounds: z
    .object({
      x: z.number().int().optional(),
      y: z.number().int().optional(),
      width: z.number().int().min(200).max(10_000),
      height: z.number().int().min(200).max(10_000),
    })
    .nullable(),
  notificationsSnoozedUntil: z.number().nullable(),
  startAtLogin: z.boolean(),
});

/** electron-store options for the app's own prefs (app.json next to config.json). */
export function appPrefsStoreOptions(configDir: string): StoreOptions {
  const json = z.toJSONSchema(AppPrefsSchema, { io: 'input' }) as { properties: Record<string, unknown> };
  return {
    cwd: configDir,
    name: APP_PREFS_NAME,
    schema: json.properties,
    configFileMode: 0o600,
    clearInvalidConfig: false,
    defaults: { ...APP_PREFS_DEFAULTS },
  };
}

/** Parse prefs read from disk, falling back to the defaults for anything invalid. */
export function parseAppPrefs(raw: unknown): AppPrefs {
  const obj = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const out: AppPrefs = { ...APP_PREFS_DEFAULTS };
  for (const key of Object.keys(APP_PREFS_DEFAULTS) as (keyof AppPrefs)[]) {
    const r = AppPrefsSchema.shape[key].safeParse(obj[key]);
    if (r.success) (out as unknown as Record<string, unknown>)[key] = r.data;
  }
  return out;
}

/** Keep a window on screen: bounds saved on a monitor that is gone are dropped. */
export function visibleBounds(
  saved: WindowBounds | null,
  displays: { x: number; y: number; width: number; height: number }[],
): WindowBounds | null {
  if (!saved) return null;
  if (saved.x === undefined || saved.y === undefined) return { width: saved.width, height: saved.height };
  const { x, y } = saved;
  const onScreen = displays.some(
    (d) => x + 50 >= d.x && y >= d.y && x + 50 <= d.x + d.width && y + 20 <= d.y + d.height,
  );
  return onScreen ? saved : { width: saved.width, height: saved.height };
}
