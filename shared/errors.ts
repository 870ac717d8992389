/**
 * Every failure the engine reports has one of these kinds. The engine maps
 * process exit codes and stderr to a kind (electron/engine/errors.ts); the
 * UI and the CLI show `message` and `fix`, never raw stderr alone.
 */
export const ERROR_KINDS = [
  'auth-failed',
  'host-unreachable',
  'host-key-changed',
  'host-key-unknown',
  'disk-full',
  'rsync-missing-local',
  'rsync-missing-remote',
  'rsync-too-old',
  'remote-missing',
  'remote-not-dir',
  'local-missing',
  'local-not-dir',
  'pair-overlap',
  'pair-exists',
  'pair-unknown',
  'permission-denied',
  'partial-transfer',
  'vanished',
  'watch-limit',
  'watcher-died',
  'invalid-settings',
  'invalid-remote',
  'not-implemented',
  'daemon-running',
  'daemon-unreachable',
  'cancelled',
  'unknown',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

/** The serialisable shape of an error, as it crosses the API. */
export interface ErrorInfo {
  kind: ErrorKind;
  /** One sentence a person understands: what went wrong. */
  message: string;
  /** What to do about it, when we know. */
  fix?: string;
  /** Files concerned (vanished, unreadable...), when the error is about files. */
  files?: string[];
  /** Raw detail (stderr excerpt) for the log, never the only thing shown. */
  detail?: string;
}
