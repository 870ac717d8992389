/**
 * Engine-internal types shared by its modules. Paths inside a pair are
 * always relative POSIX paths with no leading or trailing slash; the root is ''.
 */

import type { RemoteAddress } from '../../shared/remote-address.js';

export type EntryKind = 'file' | 'dir' | 'symlink';

/** What lstat tells about a local path, reduced to what sync needs. */
export interface LocalStat {
  kind: EntryKind;
  size: number;
  mtimeNs: bigint;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  ino: bigint;
  /** Symlink target, for symlinks; null otherwise. */
  target: string | null;
}

/**
 * The last synced state of one path (the three-way base of the next issue).
 * An entry is written only after the transfer that made both sides agree succeeded.
 */
export interface Entry extends LocalStat {
  path: string;
  /** Content hash (hex sha256) when known; recorded for racily-clean files and for the two-way base. */
  hash: string | null;
  /** When this entry was last confirmed in sync, in ns since the epoch. */
  syncedAtNs: bigint;
  /** The remote side's size and mtime after the sync (for two-way change detection), when known. */
  remoteSize: number | null;
  remoteMtimeNs: bigint | null;
  /** The remote inode after the sync, when the server tells it (for remote rename detection). */
  remoteIno?: bigint | null;
  /**
   * The remote permission bits after the sync, when known: a directory's are compared
   * with the server's (its mode there may differ from this side's, e.g. another umask
   * when both sides made it). Unknown (older databases): `mode` stands in.
   */
  remoteMode?: number | null;
}

/** A pair's remote, parsed (shared/remote-address.ts; the engine's path is normalised: remote/spec.ts). */
export type RemoteSpec = RemoteAddress;

export interface SshOptions {
  /** Directory holding ControlMaster sockets (in the app's data dir, mode 0700). */
  controlDir: string;
  /** `ssh -F FILE` instead of ~/.ssh/config, when set. */
  configFile?: string;
  /** `ssh -i FILE -o IdentitiesOnly=yes`, when set. */
  identityFile?: string;
  /** Seconds for ConnectTimeout (default 10). */
  connectTimeoutSec?: number;
}

/** Matches paths against the pair's excludes (gitignore syntax) plus the built-in ones. */
export interface Excluder {
  /** relPath: relative POSIX path; isDir: whether it is a directory. */
  ignores(relPath: string, isDir: boolean): boolean;
  /**
   * The same excludes as rsync --exclude patterns, or null when some pattern has no
   * exact rsync equivalent here (negation, `**`, character classes, escapes). Used to
   * send a whole folder with one recursive rsync (cycle.ts); `ignores` stays the judge.
   */
  rsyncRules?(): readonly string[] | null;
}

/**
 * What the server says about one path. `mtimeNs` has nanosecond precision when
 * the listing came from GNU find, whole seconds (×1e9) when it came from rsync's
 * own listing; compare remote mtimes with `sameRemoteTime`, which allows for that.
 * `ino` is null when the server can't tell it (rsync listing).
 */
export interface RemoteStat {
  kind: EntryKind;
  size: number;
  mtimeNs: bigint;
  mode: number;
  ino: bigint | null;
  target: string | null;
}

export interface RemoteEntry extends RemoteStat {
  path: string;
}

/** What the server can do, found once per connection. */
export interface RemoteCapabilities {
  inotifywait: boolean;
  gnuFind: boolean;
}
