import { isAbsolute } from 'node:path';
import type { IpcPickFolderResponse } from '../../../shared/ipc.js';
import { isTrustedSender } from './trust.js';

export interface PickFolderDeps {
  /** dialog.showOpenDialog for one folder: the chosen paths, empty when cancelled. */
  showOpenDialog: (o: { title: string; properties: ('openDirectory' | 'createDirectory')[] }) => Promise<{
    canceled: boolean;
    filePaths: string[];
  }>;
}

/**
 * The main side of PICK_FOLDER_CHANNEL, with no Electron in it: only the app's own pages
 * may ask; the answer is the one absolute folder the user chose, or null (cancelled).
 * The wizard then checks that folder with the engine (checkLocalFolder) like a typed one.
 */
export async function handlePickFolder(
  senderUrl: string | null | undefined,
  allowed: readonly string[],
  deps: PickFolderDeps,
): Promise<IpcPickFolderResponse> {
  if (!isTrustedSender(senderUrl, allowed)) {
    return {
      error: { kind: 'permission-denied', message: 'Request refused: it did not come from the lipsync window.' },
    };
  }
  try {
    const r = await deps.showOpenDialog({
      title: 'Folder to sync',
      properties: ['openDirectory', 'createDirectory'],
    });
    const path = r.canceled ? undefined : r.filePaths[0];
    return { path: path && isAbsolute(path) ? path : null };
  } catch (e) {
    return {
      error: {
        kind: 'unknown',
        message: `The folder picker could not open: ${e instanceof Error ? e.message : String(e)}`,
        fix: 'Type the folder path into the field instead.',
      },
    };
  }
}
