/**
 * Settling a conflict (docs/sync-semantics.md, conflicts): a conflict left the local
 * version in a copy (`copyPath`) and the server's under the name (`path`). Keeping
 * one side moves the other version into the local trash, in the layout of every
 * replaced version (versions.newTrashDir, rule S4), so `lipsync versions` lists it
 * and it can be restored. The pair's next sync carries the result to the server.
 */
import type { StateDb } from '../state/db.js';
import { LipsyncError } from '../errors.js';
import { existsInRoot, renameInRoot } from '../safe-fs.js';
import { newTrashDir } from '../versions.js';

export type KeepSide = 'local' | 'remote' | 'both';

/**
 * Settles open conflict `id` in the local folder `root`: keep the local version (the
 * copy takes the name), the remote one (the copy goes), or both (nothing moves).
 * Returns the paths the next sync must look at.
 */
export function resolveConflict(
  db: StateDb,
  root: string,
  id: number,
  keep: KeepSide,
): { path: string; paths: string[] } {
  const conflict = db.getConflict(id);
  if (!conflict || conflict.resolvedAt !== null)
    throw new LipsyncError('pair-unknown', `There is no open conflict ${id}.`, { fix: 'See `lipsync conflicts`.' });
  const { path, copyPath } = conflict;
  const trash = newTrashDir();
  // Never through a symlink (N5): a folder above either path that is not one refuses it.
  if (keep === 'local') {
    // The local version (in the copy) takes the name; the other version goes to the trash.
    if (existsInRoot(root, copyPath)) {
      if (existsInRoot(root, path)) renameInRoot(root, path, `${trash}/${path}`, true);
      renameInRoot(root, copyPath, path);
    }
  } else if (keep === 'remote') {
    if (existsInRoot(root, copyPath)) renameInRoot(root, copyPath, `${trash}/${copyPath}`, true);
  }
  db.resolveConflict(id, keep);
  return { path, paths: [path, copyPath] };
}
