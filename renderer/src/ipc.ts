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
};
