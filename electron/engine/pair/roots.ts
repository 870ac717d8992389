/**
 * The safety checks of a pair's two roots (docs/sync-semantics.md, "Missing roots"):
 * never read a missing or swapped folder as "everything was deleted". Each root
 * carries a marker naming what it is: the local one this pair's id
 * (.lipsync/pair-id), the server one the shared folder's id, which every client
 * syncing it joins. A check returns the problem as an error, or null when the root
 * is fit to sync.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MARKER_FILE, META_DIR } from '../../../shared/layout.js';
import { LipsyncError } from '../errors.js';

const LOCAL_MARKER = MARKER_FILE;

export function writeLocalMarker(root: string, id: string): void {
  mkdirSync(join(root, META_DIR), { recursive: true });
  writeFileSync(join(root, LOCAL_MARKER), id + '\n');
}

/**
 * The local root must exist and be this pair's folder. A root without a marker gets
 * one while the pair has synced nothing (`hasEntries` false); after that a missing
 * marker means another disk or folder took its place.
 */
export function localRootProblem(root: string, pairId: string, hasEntries: boolean): LipsyncError | null {
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    return new LipsyncError('local-missing', `The local folder ${root} is missing or not a directory.`, {
      fix: 'If it is on a disk that is not mounted, mount it; lipsync resumes on the next sync. Nothing was deleted on the server.',
    });
  }
  const marker = join(root, LOCAL_MARKER);
  if (!existsSync(marker)) {
    if (hasEntries) {
      return new LipsyncError(
        'local-missing',
        `The local folder ${root} has lost its lipsync marker (.lipsync/pair-id).`,
        {
          fix: 'If the disk holding it was swapped or unmounted, mount the right one. If you recreated the folder on purpose, remove the pair and add it again. Nothing was deleted on the server.',
        },
      );
    }
    writeLocalMarker(root, pairId);
  } else if (readFileSync(marker, 'utf8').trim() !== pairId) {
    return new LipsyncError('local-missing', `The local folder ${root} belongs to another lipsync pair.`, {
      fix: 'Check the path of this pair (`lipsync list`).',
    });
  }
  return null;
}

/** What the server's probe found of the root and of rsync (remote/ops.ts). */
export interface ServerProbe {
  root: string;
  rsyncVersion: unknown;
}

/** The server root must exist as a folder we can read and write, with rsync on the server. */
export function serverRootProblem(probe: ServerProbe, remoteText: string): LipsyncError | null {
  if (probe.root === 'missing') {
    return new LipsyncError('remote-missing', `The remote folder ${remoteText} does not exist.`, {
      fix: 'If it is on a disk that is not mounted, mount it. lipsync does not recreate a vanished folder by itself; remove the pair and add it again to start over.',
    });
  }
  if (probe.root === 'not-dir') {
    return new LipsyncError('remote-not-dir', `The remote path ${remoteText} is not a directory.`);
  }
  if (probe.root === 'no-access') {
    return new LipsyncError('permission-denied', `The remote folder ${remoteText} cannot be read or written.`, {
      fix: 'Check its owner and permissions on the server.',
    });
  }
  if (probe.rsyncVersion === null) {
    return new LipsyncError('rsync-missing-remote', `rsync is not installed on the server of ${remoteText}.`, {
      fix: 'Install it there: sudo apt install rsync (or your system’s package manager).',
    });
  }
  return null;
}

/**
 * The server root's marker must be the folder this pair joined: `marker` is what the
 * root holds now (null: none), `joined` the id the pair recorded (undefined: never joined).
 */
export function serverMarkerProblem(
  marker: string | null,
  joined: string | undefined,
  hasEntries: boolean,
  remoteText: string,
): LipsyncError | null {
  if (marker === null && (joined || hasEntries)) {
    return new LipsyncError(
      'remote-missing',
      `The remote folder ${remoteText} has lost its lipsync marker (.lipsync/pair-id).`,
      {
        fix: 'If it is on a disk that is not mounted on the server, mount it. If the folder was recreated on purpose, remove the pair and add it again. Nothing was deleted.',
      },
    );
  }
  if (marker !== null && joined && marker !== joined) {
    return new LipsyncError(
      'remote-not-dir',
      `The remote folder ${remoteText} is not the folder this pair synced before (its marker changed).`,
      {
        fix: 'If another disk is mounted there, mount the right one. To sync with this folder from scratch, remove the pair and add it again. Nothing was deleted.',
      },
    );
  }
  return null;
}
