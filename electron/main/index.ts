import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Notification, shell, type IpcMainInvokeEvent } from './electron-seam.js';
import {
  EVENT_CHANNELS,
  OPEN_PATH_CHANNEL,
  PICK_FOLDER_CHANNEL,
  REQUEST_CHANNEL,
  SHOW_IN_FOLDER_CHANNEL,
} from '../../shared/ipc.js';
import type { EngineStatus } from '../../shared/status.js';
import { toErrorInfo } from '../engine/errors.js';
import { defaultDirs } from '../engine/paths.js';
import { EngineHost } from './engine-host.js';
import { handleRequest } from './logic/ipc.js';
import { handleOpenPath } from './logic/open-path.js';
import { isTrustedSender } from './logic/trust.js';
import { NotificationBatcher } from '../../shared/notifications.js';
import { pairName, type TrayAction } from './logic/tray.js';
import { autostartDesktopEntry, AUTOSTART_FILE_NAME, startedHidden } from './logic/autostart.js';
import { AppPrefsStore, SharedSettings } from './prefs.js';
import { TrayController } from './tray.js';
import { handlePickFolder } from './logic/pick-folder.js';
import { MainWindow, allowedUrls, hardenSessions, type WindowPaths } from './windows.js';

/**
 * The Electron main process: a thin shell around the engine. It hosts the Engine (watch
 * mode) and the same local API as `lipsync run`, shows a tray icon and menu, one window
 * (the React renderer), and batched desktop notifications. Logic that needs no Electron
 * is in ./logic and unit-tested in plain Node.
 */

const here = dirname(fileURLToPath(import.meta.url));
const dirs = defaultDirs();

// Chromium's caches belong with the data, not in ~/.config/lipsync next to config.json
// (Electron's default userData on Linux). Must be set before the single-instance lock.
app.setPath('userData', join(dirs.dataDir, 'electron'));

const paths: WindowPaths = {
  preload: join(here, '../preload/index.cjs'),
  rendererIndex: join(here, '../renderer/index.html'),
  devUrl: !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined,
};
const allowed = allowedUrls(paths);
const iconDir = app.isPackaged ? join(process.resourcesPath, 'tray') : join(app.getAppPath(), 'build', 'tray');

let host: EngineHost | null = null;
let tray: TrayController | null = null;
let window: MainWindow | null = null;
let prefs: AppPrefsStore | null = null;
let batcher: NotificationBatcher | null = null;
let lastStatus: EngineStatus | null = null;
let syncingFromMenu = false;
let quitting = false;

if (!app.requestSingleInstanceLock()) {
  // Another copy of the app runs: it shows its window (second-instance below).
  app.quit();
} else {
  app.on('second-instance', () => window?.show());
  app.on('window-all-closed', () => {
    // Stay in the tray.
  });
  app.on('before-quit', (e) => {
    if (quitting) return;
    e.preventDefault();
    void shutdown();
  });
  void app.whenReady().then(main);
}

async function main(): Promise<void> {
  prefs = new AppPrefsStore(dirs.configDir);
  try {
    host = await EngineHost.start(dirs, () => app.quit());
  } catch (e) {
    const info = toErrorInfo(e);
    await dialog.showMessageBox({
      type: info.kind === 'daemon-running' ? 'info' : 'error',
      title: 'lipsync',
      message: info.message,
      detail: info.fix ?? '',
      buttons: ['Quit'],
    });
    quitting = true;
    app.exit(info.kind === 'daemon-running' ? 0 : 1);
    return;
  }
  // The settings file the engine writes, opened with electron-store (see logic/stores.ts).
  // Opening it validates it against the same schema; the app only reads it.
  try {
    new SharedSettings(dirs.configDir).read();
  } catch {
    // The engine reports an invalid settings file itself (status and log).
  }

  hardenSessions(allowed, paths.devUrl);
  ipcMain.handle(REQUEST_CHANNEL, (event: IpcMainInvokeEvent, payload: unknown) =>
    handleRequest(
      event.senderFrame?.url,
      allowed,
      payload,
      (req) => host!.run(req, { onShutdown: () => app.quit() }),
      (err) => host!.toErrorInfo(err),
    ),
  );

  // "Open" and "Show in folder": only paths inside a pair's local folder (logic/open-path.ts).
  const openPathDeps = {
    roots: () => host!.engine.list().map((x) => x.local),
    realpath: (x: string) => realpath(x),
    openPath: (x: string) => shell.openPath(x),
    showItemInFolder: (x: string) => shell.showItemInFolder(x),
  };
  ipcMain.handle(OPEN_PATH_CHANNEL, (event: IpcMainInvokeEvent, payload: unknown) =>
    handleOpenPath(event.senderFrame?.url, allowed, payload, openPathDeps),
  );
  ipcMain.handle(SHOW_IN_FOLDER_CHANNEL, (event: IpcMainInvokeEvent, payload: unknown) =>
    handleOpenPath(event.senderFrame?.url, allowed, payload, openPathDeps, 'show'),
  );
  // The setup wizard's "Choose…" for the local folder: the platform's folder dialog (logic/pick-folder.ts).
  ipcMain.handle(PICK_FOLDER_CHANNEL, (event: IpcMainInvokeEvent) =>
    handlePickFolder(event.senderFrame?.url, allowed, {
      showOpenDialog: (o) => {
        const owner = BrowserWindow.fromWebContents(event.sender);
        return owner ? dialog.showOpenDialog(owner, o) : dialog.showOpenDialog(o);
      },
    }),
  );

  const p = prefs.get();
  window = new MainWindow({
    paths,
    bounds: p.windowBounds,
    onBounds: (b) => prefs?.set('windowBounds', b),
    // The first snapshot right after the page loads (then every change, below).
    onLoaded: (wc) => {
      if (isTrustedSender(wc.getURL(), allowed)) wc.send(EVENT_CHANNELS.state, host!.engine.status());
    },
  });

  const names = () => new Map((lastStatus?.pairs ?? []).map((x) => [x.id, pairName(x)]));
  batcher = new NotificationBatcher({
    intervalMs: 30_000,
    pairName: (id) => names().get(id) ?? id,
    notify: (texts) => {
      if (!Notification.isSupported()) return;
      const n = new Notification({ title: 'lipsync', body: texts.join('\n'), silent: true });
      n.on('click', () => window?.show('recent'));
      n.show();
    },
  });
  batcher.snooze(p.notificationsSnoozedUntil);

  tray = new TrayController(
    iconDir,
    (a) => void runAction(a),
    () => window?.show(),
  );

  const engine = host.engine;
  engine.onState((s) => {
    lastStatus = s;
    refreshTray();
    window?.send(EVENT_CHANNELS.state, s, allowed);
  });
  engine.onLog((r) => {
    batcher?.feed(r);
    window?.send(EVENT_CHANNELS.log, r, allowed);
  });
  lastStatus = engine.status();
  refreshTray();

  if (!startedHidden(process.argv, process.platform !== 'linux' && app.getLoginItemSettings().wasOpenedAtLogin))
    window.show();

  try {
    await host.startPairs();
  } catch (e) {
    console.error('lipsync: starting pairs failed:', e);
  }
  lastStatus = engine.status();
  refreshTray();
}

function refreshTray(): void {
  if (!tray || !lastStatus || !prefs) return;
  const p = prefs.get();
  tray.update(lastStatus, {
    now: Date.now(),
    syncing: syncingFromMenu,
    startAtLogin: p.startAtLogin,
    notificationsSnoozedUntil: p.notificationsSnoozedUntil,
  });
}

async function runAction(a: TrayAction): Promise<void> {
  const engine = host?.engine;
  try {
    switch (a.kind) {
      case 'sync':
        if (!engine || syncingFromMenu) return;
        syncingFromMenu = true;
        refreshTray();
        try {
          await engine.sync();
        } finally {
          syncingFromMenu = false;
          refreshTray();
        }
        return;
      case 'pause':
        await engine?.pause(undefined, a.forMs);
        return;
      case 'resume':
        await engine?.resume();
        return;
      case 'open-folder': {
        const err = await shell.openPath(a.path);
        if (err) dialog.showErrorBox('lipsync', `Could not open ${a.path}: ${err}`);
        return;
      }
      case 'show':
        window?.show(a.view === 'status' ? undefined : a.view);
        return;
      case 'open-log': {
        const err = host ? await shell.openPath(host.logFile) : 'the engine is not running';
        if (err) dialog.showErrorBox('lipsync', `Could not open the log: ${err}`);
        return;
      }
      case 'snooze-notifications': {
        const until = a.forMs === null ? null : a.forMs >= Number.MAX_SAFE_INTEGER ? a.forMs : Date.now() + a.forMs;
        prefs?.set('notificationsSnoozedUntil', until);
        batcher?.snooze(until);
        refreshTray();
        return;
      }
      case 'toggle-start-at-login': {
        const next = !(prefs?.get().startAtLogin ?? false);
        setStartAtLogin(next);
        prefs?.set('startAtLogin', next);
        refreshTray();
        return;
      }
      case 'quit':
        app.quit();
        return;
    }
  } catch (e) {
    const info = host ? host.toErrorInfo(e) : { message: String(e), fix: undefined };
    dialog.showErrorBox('lipsync', `${info.message}${info.fix ? `\n\n${info.fix}` : ''}`);
  }
}

/** macOS and Windows: the login item; Linux: an XDG autostart entry (logic/autostart.ts). */
function setStartAtLogin(on: boolean): void {
  if (process.platform === 'linux') {
    const dir = join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'autostart');
    const file = join(dir, AUTOSTART_FILE_NAME);
    if (on) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, autostartDesktopEntry(process.env.APPIMAGE || process.execPath));
    } else rmSync(file, { force: true });
    return;
  }
  app.setLoginItemSettings({ openAtLogin: on, args: ['--hidden'] });
}

async function shutdown(): Promise<void> {
  if (quitting) return;
  quitting = true;
  batcher?.dispose();
  tray?.destroy();
  window?.destroy();
  await host?.stop().catch(() => undefined);
  app.exit(0);
}
