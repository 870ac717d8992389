/**
 * inotify limits: what to tell the user when a watcher can't watch the whole
 * tree, and the error class both backends throw when start() fails.
 *
 * The advice builders are pure (numbers in, text out) so they can be unit
 * tested; only readInotifyLimits() touches /proc.
 */
import { readFileSync } from 'node:fs';
import type { LimitAdvice, WatchFailure } from './watcher.js';

/** Thrown by Watcher.start() when the watches can't be established. */
export class WatchStartError extends Error {
  readonly failure: WatchFailure;
  constructor(failure: WatchFailure) {
    super(failure.message);
    this.name = 'WatchStartError';
    this.failure = failure;
  }
}

export const WATCHES_SYSCTL = 'fs.inotify.max_user_watches';
export const INSTANCES_SYSCTL = 'fs.inotify.max_user_instances';
/** Never recommend fewer watches than this: enough for ~500k folders. */
export const MIN_RECOMMENDED_WATCHES = 524_288;
export const MIN_RECOMMENDED_INSTANCES = 512;

/** The smallest power of two >= n (n >= 1). */
export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** max(current * 2, 524288), rounded up to a power of two. */
export function recommendedWatches(current: number | null): number {
  const base = Math.max((current ?? 0) * 2, MIN_RECOMMENDED_WATCHES);
  return nextPowerOfTwo(base);
}

/** max(current * 2, 512). */
export function recommendedInstances(current: number | null): number {
  return Math.max((current ?? 0) * 2, MIN_RECOMMENDED_INSTANCES);
}

function advice(
  sysctl: LimitAdvice['sysctl'],
  current: number | null,
  recommended: number,
  confName: string,
): LimitAdvice {
  const setting = `${sysctl}=${recommended}`;
  return {
    sysctl,
    current,
    recommended,
    command: `sudo sysctl ${setting}`,
    permanent: `echo ${setting} | sudo tee /etc/sysctl.d/${confName} && sudo sysctl --system`,
  };
}

export function watchLimitAdvice(current: number | null): LimitAdvice {
  return advice(WATCHES_SYSCTL, current, recommendedWatches(current), '90-lipsync-watches.conf');
}

export function instanceLimitAdvice(current: number | null): LimitAdvice {
  return advice(INSTANCES_SYSCTL, current, recommendedInstances(current), '90-lipsync-instances.conf');
}

function fixText(a: LimitAdvice): string {
  return `Raise the limit now with: ${a.command} — and keep it after a reboot with: ${a.permanent}`;
}

function shown(sysctl: string, current: number | null): string {
  return current === null ? sysctl : `${sysctl} = ${current}`;
}

/** The failure for "upper limit on inotify watches reached" (ENOSPC from inotify_add_watch). */
export function watchLimitFailure(current: number | null, detail?: string): WatchFailure {
  const limit = watchLimitAdvice(current);
  return {
    kind: 'watch-limit',
    message: `Can't watch all folders: the inotify watch limit (${shown(WATCHES_SYSCTL, current)}) is reached.`,
    fix: fixText(limit),
    ...(detail ? { detail } : {}),
    limit,
  };
}

/** The failure for "Couldn't initialize inotify: Too many open files" (EMFILE from inotify_init). */
export function instanceLimitFailure(current: number | null, detail?: string): WatchFailure {
  const limit = instanceLimitAdvice(current);
  return {
    kind: 'instance-limit',
    message: `Can't start the file watcher: the inotify instance limit (${shown(INSTANCES_SYSCTL, current)}) is reached.`,
    fix: fixText(limit),
    ...(detail ? { detail } : {}),
    limit,
  };
}

/** Which inotify limit an error text (inotifywait stderr, @parcel/watcher message) talks about, if any. */
export function classifyLimitText(text: string): 'watch-limit' | 'instance-limit' | null {
  if (/upper limit on inotify watches reached/i.test(text)) return 'watch-limit';
  // Runtime: "Couldn't watch new directory X: No space left on device"; parcel: "inotify_add_watch on 'X' failed: No space left on device".
  if (/(couldn't watch|inotify_add_watch|failed to watch)[^\n]*no space left on device/i.test(text))
    return 'watch-limit';
  if (
    /couldn't initialize inotify|max_user_instances|unable to initialize inotify[^\n]*too many open files/i.test(text)
  ) {
    return 'instance-limit';
  }
  return null;
}

export interface InotifyLimits {
  maxUserWatches: number | null;
  maxUserInstances: number | null;
}

/** Parses a /proc/sys number ("8192\n"); null when it isn't one. */
export function parseProcNumber(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : null;
}

function readProcNumber(file: string): number | null {
  try {
    return parseProcNumber(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** The current limits, from /proc/sys/fs/inotify (null where unreadable, e.g. not Linux). */
export function readInotifyLimits(procDir = '/proc/sys/fs/inotify'): InotifyLimits {
  return {
    maxUserWatches: readProcNumber(`${procDir}/max_user_watches`),
    maxUserInstances: readProcNumber(`${procDir}/max_user_instances`),
  };
}

/** The failure for a limit kind, reading the current value from /proc. */
export function limitFailure(kind: 'watch-limit' | 'instance-limit', detail?: string, procDir?: string): WatchFailure {
  const limits = readInotifyLimits(procDir);
  return kind === 'watch-limit'
    ? watchLimitFailure(limits.maxUserWatches, detail)
    : instanceLimitFailure(limits.maxUserInstances, detail);
}
