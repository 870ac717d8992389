import { isAbsolute, relative, resolve } from 'node:path';
import type { IpcOpenPathResponse } from '../../../shared/ipc.js';
import { isTrustedSender } from './trust.js';

/**
 * Whether `target` is `root` or lies below it. Both must be absolute; they are compared
 * as resolved paths (no `..` escapes), component by component (`/a/bc` is not inside `/a/b`).
 * Pure: the caller resolves symlinks (realpath) first.
 */
export function isInsideRoot(target: string, root: string): boolean {
  if (!isAbsolute(target) || !isAbsolute(root)) return false;
  const rel = relative(resolve(root), resolve(target));
  return rel === '' || (!isParentStep(rel) && !isAbsolute(rel));
}

/** `..` or `../…`: outside. (A name like `..notes` is inside.) */
function isParentStep(rel: string): boolean {
  return rel === '..' || rel.startsWith('../');
}

/** The first of `roots` that holds `target` (see isInsideRoot), or null. */
export function rootHolding(target: string, roots: readonly string[]): string | null {
  return roots.find((r) => isInsideRoot(target, r)) ?? null;
}

export interface OpenPathDeps {
  /** The local folders of the configured pairs. */
  roots: () => readonly string[];
  /** fs.realpath: resolves symlinks; rejects when the path does not exist. */
  realpath: (p: string) => Promise<string>;
  /** shell.openPath: resolves to '' on success, else an error message. */
  openPath: (p: string) => Promise<string>;
  /** shell.showItemInFolder. */
  showItemInFolder: (p: string) => void;
}

const refuse = (message: string, kind: 'permission-denied' | 'invalid-settings' = 'permission-denied') => ({
  error: { kind, message },
});

/**
 * The main side of OPEN_PATH_CHANNEL, with no Electron in it: only the app's own pages may
 * ask; the path must be a string naming something that exists inside a pair's local folder
 * once both are resolved with realpath (so a symlink inside the folder that points out of
 * it is refused). An absolute path is taken as is; a relative one is tried against each
 * pair's folder. It is opened with the default app; if that fails, shown in its folder.
 * With `mode` 'show' (SHOW_IN_FOLDER_CHANNEL) it is only shown in its folder.
 */
export async function handleOpenPath(
  senderUrl: string | null | undefined,
  allowed: readonly string[],
  payload: unknown,
  deps: OpenPathDeps,
  mode: 'open' | 'show' = 'open',
): Promise<IpcOpenPathResponse> {
  if (!isTrustedSender(senderUrl, allowed)) return refuse('Request refused: it did not come from the lipsync window.');
  if (typeof payload !== 'string' || payload === '' || payload.includes('\0') || payload.length > 4096)
    return refuse('openPath expects a path (a non-empty string).', 'invalid-settings');
  const roots: string[] = [];
  for (const r of deps.roots()) {
    try {
      roots.push(await deps.realpath(r));
    } catch {
      // a pair whose folder is gone holds nothing to open
    }
  }
  const candidates = isAbsolute(payload) ? [payload] : roots.map((r) => resolve(r, payload));
  for (const c of candidates) {
    let real: string;
    try {
      real = await deps.realpath(c);
    } catch {
      continue;
    }
    if (!rootHolding(real, roots)) continue;
    if (mode === 'show') {
      deps.showItemInFolder(real);
      return { ok: true };
    }
    const err = await deps.openPath(real);
    if (err) deps.showItemInFolder(real);
    return { ok: true };
  }
  return refuse(`${payload} is not a file or folder inside one of your synced folders.`);
}
