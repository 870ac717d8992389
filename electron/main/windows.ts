import { pathToFileURL } from 'node:url';
import { BrowserWindow, app, screen, session, type WebContents } from './electron-seam.js';
import { contentSecurityPolicy, isAllowedNavigation, isTrustedSender } from './logic/trust.js';
import { visibleBounds, type WindowBounds } from './logic/stores.js';

export interface WindowPaths {
  preload: string;
  /** The built renderer's index.html (out/renderer/index.html). */
  rendererIndex: string;
  /** The renderer dev server (`electron-vite dev` sets ELECTRON_RENDERER_URL); never when packaged. */
  devUrl?: string;
}

/** The URLs the app's windows may load and that may send IPC (see logic/trust.ts). */
export function allowedUrls(p: WindowPaths): string[] {
  const list = [pathToFileURL(p.rendererIndex).href];
  if (p.devUrl) list.push(p.devUrl);
  return list;
}

/**
 * Hardening for every web contents the app creates: no navigation away from the app's
 * page, no new windows, no <webview>, no permissions (camera, notifications from the
 * page, …), and the CSP also sent as a response header (the renderer's index.html has
 * it as a meta tag, which is what applies to file:// pages).
 */
export function hardenSessions(allowed: readonly string[], devUrl?: string): void {
  const csp = contentSecurityPolicy(devUrl ? new URL(devUrl).origin : undefined);
  const ses = session.defaultSession;
  ses.webRequest.onHeadersReceived((details, cb) => {
    cb({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } });
  });
  ses.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  ses.setPermissionCheckHandler(() => false);
  app.on('web-contents-created', (_e, contents: WebContents) => {
    contents.on('will-navigate', (ev, url) => {
      if (!isAllowedNavigation(url, allowed)) ev.preventDefault();
    });
    contents.on('will-redirect', (ev, url) => {
      if (!isAllowedNavigation(url, allowed)) ev.preventDefault();
    });
    contents.on('will-attach-webview', (ev) => ev.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
}

export interface MainWindowOptions {
  paths: WindowPaths;
  bounds: WindowBounds | null;
  onBounds: (b: WindowBounds) => void;
  /** Called once the page has loaded (to send it the current state). */
  onLoaded: (wc: WebContents) => void;
}

/** The one app window: created on demand, hidden (not destroyed) when closed, so the tray keeps the app. */
export class MainWindow {
  private win: InstanceType<typeof BrowserWindow> | null = null;
  quitting = false;

  constructor(private readonly opts: MainWindowOptions) {}

  get webContents(): WebContents | null {
    return this.win && !this.win.isDestroyed() ? this.win.webContents : null;
  }

  /** Show the window, on a view of the renderer (`#/conflicts`, `#/recent`, `#/preferences`). */
  show(view?: string): void {
    const win = this.win && !this.win.isDestroyed() ? this.win : this.create(view);
    if (view && this.win === win && win.webContents.getURL()) {
      void win.webContents.executeJavaScript(`location.hash = ${JSON.stringify(`#/${view}`)}`).catch(() => undefined);
    }
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
  }

  private create(view?: string): InstanceType<typeof BrowserWindow> {
    const b = visibleBounds(
      this.opts.bounds,
      screen.getAllDisplays().map((d) => d.workArea),
    );
    const win = new BrowserWindow({
      width: b?.width ?? 960,
      height: b?.height ?? 680,
      ...(b?.x !== undefined && b.y !== undefined ? { x: b.x, y: b.y } : {}),
      minWidth: 640,
      minHeight: 420,
      show: false,
      title: 'lipsync',
      autoHideMenuBar: true,
      webPreferences: {
        preload: this.opts.paths.preload,
        contextIsolation: true,
        sandbox: true,
        nodeIntegration: false,
        nodeIntegrationInWorker: false,
        webSecurity: true,
        allowRunningInsecureContent: false,
        webviewTag: false,
        spellcheck: false,
        devTools: !app.isPackaged,
      },
    });
    this.win = win;
    win.once('ready-to-show', () => win.show());
    const save = () => {
      if (!win.isDestroyed() && !win.isMinimized() && !win.isMaximized()) this.opts.onBounds(win.getBounds());
    };
    win.on('resized', save);
    win.on('moved', save);
    win.on('close', (e) => {
      save();
      if (!this.quitting) {
        e.preventDefault();
        win.hide();
      }
    });
    win.on('closed', () => {
      if (this.win === win) this.win = null;
    });
    win.webContents.on('did-finish-load', () => this.opts.onLoaded(win.webContents));
    const hash = view ? `/${view}` : undefined;
    if (this.opts.paths.devUrl) void win.loadURL(this.opts.paths.devUrl + (hash ? `#${hash}` : ''));
    else void win.loadFile(this.opts.paths.rendererIndex, hash ? { hash } : {});
    return win;
  }

  /** Send an event to the page, only if it is still the app's own page. */
  send(channel: string, payload: unknown, allowed: readonly string[]): void {
    const wc = this.webContents;
    if (!wc || wc.isLoading() || !isTrustedSender(wc.getURL(), allowed)) return;
    wc.send(channel, payload);
  }

  destroy(): void {
    this.quitting = true;
    if (this.win && !this.win.isDestroyed()) this.win.destroy();
  }
}
