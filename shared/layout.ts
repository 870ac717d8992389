/**
 * The layout of `.lipsync/`, lipsync's own folder at the root of each side of a
 * pair: every name in it, and the two questions "is this path lipsync's state
 * folder (or in it)". In shared/ because BUILTIN_EXCLUDES (shown by the UI) names
 * it too. No imports (the renderer's bundle has no Node).
 *
 *   .lipsync/pair-id            the pair marker (MARKER_FILE)
 *   .lipsync/partial/           rsync --partial-dir (PARTIAL_DIR)
 *   .lipsync/                   rsync --temp-dir (TEMP_DIR)
 *   .lipsync/trash/DAY/TIME/    replaced and deleted versions (TRASH_DIR)
 *   .lipsync/incoming/NAME/     folders sent whole before their rename (INCOMING_DIR): on the
 *                               server for a push (T1), here for a pull (T3)
 *   .lipsync/lock/owner         the remote lock (LOCK_DIR, LOCK_OWNER_FILE; remote/lock.ts)
 *   .lipsync/lock.break         taken while breaking a stale lock (LOCK_BREAK_DIR)
 *   .lipsync/poll-marker-ID     a polling client's marker (pollMarkerFile)
 *   .lipsync/journal/           the server's shared watcher: its journal, owner, horizon,
 *                               start lock, clients and programs (JOURNAL_DIR; remote/journal.ts)
 */

/** The state folder's name. */
export const META_DIR = '.lipsync';
/** The pair id, one line. */
export const MARKER_FILE = `${META_DIR}/pair-id`;
/** rsync's --partial-dir: what an interrupted transfer wrote of a file. */
export const PARTIAL_DIR = `${META_DIR}/partial`;
/** rsync's --temp-dir: where a file is written before its rename into place. */
export const TEMP_DIR = META_DIR;
/** Replaced and deleted versions: TRASH_DIR/<UTC day>/<time>/<path>. */
export const TRASH_DIR = `${META_DIR}/trash`;
/**
 * Where a new folder sent whole is written before it is moved into place in one rename:
 * on the server for a push (cycle/new-folders.ts, `.lipsync/incoming/<client id>-<random>/<path>`),
 * in the local root for a pull (cycle/new-remote-folders.ts, `.lipsync/incoming/pull-<random>/<path>`).
 */
export const INCOMING_DIR = `${META_DIR}/incoming`;
/** The remote lock: a directory (mkdir is the atomic test-and-set) holding an `owner` file. */
export const LOCK_DIR = `${META_DIR}/lock`;
export const LOCK_OWNER_FILE = `${LOCK_DIR}/owner`;
/** Taken (mkdir) while breaking a stale lock, so two clients never break and retake concurrently. */
export const LOCK_BREAK_DIR = `${META_DIR}/lock.break`;

/** The server folder's shared watcher and its journal (rules J1–J6). */
export const JOURNAL_DIR = `${META_DIR}/journal`;

/** The marker file of a polling client (its mtime is the moment of its last poll). */
export function pollMarkerFile(clientId: string): string {
  return `${META_DIR}/poll-marker-${clientId}`;
}

/**
 * Whether a root-relative path is the state folder AT THE ROOT or inside it: what
 * transfers, listings of the server and restores never touch.
 */
export function isMetaPath(rel: string): boolean {
  return rel === META_DIR || rel.startsWith(`${META_DIR}/`);
}

/**
 * Whether a root-relative path is inside a `.lipsync` folder at ANY depth (a nested
 * pair's state, as the built-in excludes say), or is itself one. A path named
 * `.lipsync` counts only when `isDir` (the default: watch events don't always say).
 * Used by the excluder and by isIgnoredPath (excludes.ts): never synced nor reported.
 */
export function inAnyMetaDir(rel: string, isDir = true): boolean {
  if (isDir && (rel === META_DIR || rel.endsWith(`/${META_DIR}`))) return true;
  return rel.startsWith(`${META_DIR}/`) || rel.includes(`/${META_DIR}/`);
}
