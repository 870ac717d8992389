/**
 * The ONE place the main process imports Electron (and electron-store, which imports
 * Electron itself). Everything else in electron/main imports from here, so unit tests
 * mock only this module (`vi.mock('../../electron/main/electron-seam.js')`) and plain
 * logic lives in electron/main/logic/ with no Electron at all.
 */
export {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeImage,
  nativeTheme,
  Notification,
  screen,
  session,
  shell,
  Tray,
} from 'electron';
export type {
  IpcMainInvokeEvent,
  MenuItemConstructorOptions,
  NativeImage,
  WebContents,
  WebPreferences,
} from 'electron';
export { default as ElectronStore } from 'electron-store';
