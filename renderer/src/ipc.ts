/**
 * The transport contract between the UI and the engine: shared/ipc.ts `LipsyncBridge`
 * (call/onState/onLog), plus optional `openPath` and `showInFolder` that only a desktop bridge offers
 * (the "Open" buttons are hidden without it, e.g. in the browser).
 */
import type { LipsyncBridge as SharedBridge } from '../../shared/ipc.js';

export type LipsyncBridge = SharedBridge & {
  /** Desktop only: open a file or folder with the default app. */
  openPath?(path: string): Promise<unknown> | void;
  /** Desktop only: show a file or folder in the file manager. */
  showInFolder?(path: string): Promise<unknown> | void;
  /**
   * Capability flag: the platform gives a folder picker (Electron's dialog, through
   * shared/ipc.ts PICK_FOLDER_CHANNEL). Without it (the web UI) the wizard shows only a text field.
   */
  canPickFolder?: boolean;
  /** Desktop only: the platform's folder dialog; the chosen absolute path, or null when cancelled. */
  pickFolder?(): Promise<string | null>;
};
