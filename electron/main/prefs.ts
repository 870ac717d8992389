import { ElectronStore, ipcMain } from './electron-seam.js';
import { appPrefsStoreOptions, parseAppPrefs, sharedSettingsStoreOptions, type AppPrefs } from './logic/stores.js';
import { SettingsSchema, describeSettingsError, type Settings } from '../../shared/settings.js';

/** The app's own prefs (app.json in the config dir). See logic/stores.ts for both files. */
export class AppPrefsStore {
  private readonly store: InstanceType<typeof ElectronStore<AppPrefs>>;

  constructor(configDir: string) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    this.store = new ElectronStore<AppPrefs>(appPrefsStoreOptions(configDir) as any);
    dropElectronStoreIpc();
  }

  get(): AppPrefs {
    return parseAppPrefs(this.store.store);
  }

  set<K extends keyof AppPrefs>(key: K, value: AppPrefs[K]): void {
    this.store.set(key, value);
  }
}

/**
 * The settings file the engine uses (config.json), opened with electron-store on the
 * same path with the same schema (see logic/stores.ts for how they agree). The engine's
 * SettingsStore stays the writer of `pairs`; the shell only reads, or changes a
 * top-level setting after validating the whole result with SettingsSchema.
 */
export class SharedSettings {
  private readonly store: InstanceType<typeof ElectronStore<Settings>>;

  constructor(configDir: string) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    this.store = new ElectronStore<Settings>(sharedSettingsStoreOptions(configDir) as any);
    dropElectronStoreIpc();
  }

  get path(): string {
    return this.store.path;
  }

  read(): Settings {
    return SettingsSchema.parse(this.store.store);
  }

  /** Change one top-level setting other than `pairs` (validated; nothing is written if invalid). */
  setGlobal<K extends Exclude<keyof Settings, 'pairs'>>(key: K, value: Settings[K]): void {
    const next = { ...this.read(), [key]: value };
    const r = SettingsSchema.safeParse(next);
    if (!r.success) throw new Error(`Invalid settings:\n${describeSettingsError(r.error)}`);
    this.store.set(key, r.data[key]);
  }
}

/**
 * electron-store registers an `ipcMain.on('electron-store-get-data')` listener for stores
 * created in a renderer. Ours live only in main, and every IPC handler must check its
 * sender, so the unchecked listener is removed.
 */
function dropElectronStoreIpc(): void {
  ipcMain.removeAllListeners('electron-store-get-data');
}
