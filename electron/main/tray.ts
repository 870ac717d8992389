import { join } from 'node:path';
import { Menu, Tray, nativeImage, nativeTheme, type MenuItemConstructorOptions } from './electron-seam.js';
import type { EngineStatus } from '../../shared/status.js';
import {
  iconVariantFor,
  statusLine,
  trayIconFile,
  trayMenuTemplate,
  trayState,
  type MenuTemplateItem,
  type TrayAction,
  type TrayMenuOptions,
} from './logic/tray.js';

/** Turn the plain-data template into Electron's menu template, wiring actions to `run`. */
export function toElectronMenu(items: MenuTemplateItem[], run: (a: TrayAction) => void): MenuItemConstructorOptions[] {
  return items.map((it) => {
    const out: MenuItemConstructorOptions = {};
    if (it.id !== undefined) out.id = it.id;
    if (it.label !== undefined) out.label = it.label;
    if (it.type !== undefined) out.type = it.type;
    if (it.enabled !== undefined) out.enabled = it.enabled;
    if (it.checked !== undefined) out.checked = it.checked;
    if (it.submenu) out.submenu = toElectronMenu(it.submenu, run);
    const action = it.action;
    if (action) out.click = () => run(action);
    return out;
  });
}

/** The tray icon and its menu; rebuilt only when what it shows changes (at most every 500 ms). */
export class TrayController {
  private readonly tray: InstanceType<typeof Tray>;
  private lastKey = '';
  private pending: { status: EngineStatus; opts: TrayMenuOptions } | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly iconDir: string,
    private readonly run: (a: TrayAction) => void,
    onClick: () => void,
  ) {
    this.tray = new Tray(this.icon('up-to-date'));
    this.tray.setToolTip('lipsync');
    // Windows and macOS: a click opens the window; Linux indicators drop clicks, the menu has it all.
    this.tray.on('click', onClick);
    nativeTheme.on('updated', () => {
      this.lastKey = '';
      if (this.pending) this.flush();
    });
  }

  private icon(state: ReturnType<typeof trayState>) {
    const variant = iconVariantFor(process.platform, nativeTheme.shouldUseDarkColors);
    const img = nativeImage.createFromPath(join(this.iconDir, trayIconFile(state, variant)));
    if (variant === 'template') img.setTemplateImage(true);
    return img;
  }

  update(status: EngineStatus, opts: TrayMenuOptions): void {
    this.pending = { status, opts };
    if (this.timer) return;
    this.flush();
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.pending) this.flush();
    }, 500);
  }

  private flush(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    const state = trayState(p.status);
    const template = trayMenuTemplate(p.status, p.opts);
    const key = JSON.stringify([state, nativeTheme.shouldUseDarkColors, template]);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.tray.setImage(this.icon(state));
    this.tray.setToolTip(`lipsync — ${statusLine(p.status, p.opts.now)}`);
    // Linux: the context menu must be set again for a change to show.
    this.tray.setContextMenu(Menu.buildFromTemplate(toElectronMenu(template, this.run)));
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.tray.destroy();
  }
}
