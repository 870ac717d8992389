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

/**
 * An activity-log line of an error or warning ("… Fix: …", as the engine writes it) split back
 * into its message and fix, for the UI's Recent changes.
 */
export function splitLogFix(msg: string): { message: string; fix?: string } {
  const at = msg.indexOf(' Fix: ');
  if (at < 0) return { message: msg };
  return { message: msg.slice(0, at), fix: msg.slice(at + ' Fix: '.length) };
}

/**
 * A fix for the errors the engine could not classify further, so the UI never shows a bare
 * "ssh failed (exit code 255)": ssh's own failure (its exit code 255, or stopped by a signal)
 * means the connection failed or was cut.
 */
export function fallbackFix(message: string): string | undefined {
  if (/\bssh (?:failed \(exit code 255\)|was stopped by a signal)/.test(message))
    return 'The connection to the server failed or was cut. Check that the server is on and reachable (try `ssh` to it in a terminal); lipsync tries again by itself.';
  return undefined;
}

/** `info` with `fallbackFix` when it has no fix of its own. */
export function withFix(info: ErrorInfo): ErrorInfo {
  if (info.fix) return info;
  const fix = fallbackFix(info.message);
  return fix ? { ...info, fix } : info;
}
