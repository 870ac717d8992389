/**
 * rsync versions: the oldest lipsync runs with, the first whose receiver refuses to
 * write through a symlinked parent, reading `rsync --version`, and comparing.
 */
import { run } from '../proc/run.js';

/** Needs --delete-missing-args (3.0) and --info=progress2 (3.1). */
export const MIN_RSYNC_VERSION = '3.1.0';

/**
 * The first rsync whose receiver was seen to refuse writing (or deleting) through a
 * symlinked parent folder in our transfers (--files-from, --no-implied-dirs, push and
 * pull): a listed `keys/id` below `keys -> /elsewhere` fails with "failed to stat ...:
 * Too many levels of symbolic links" (code 23) and nothing outside is touched; a
 * deletion there is skipped. Verified by experiment with 3.5.0; 3.4.0's
 * secure_relative_open (CVE-2024-12086/12087) guards only the basis-file open, and
 * the per-component O_NOFOLLOW walk of every receiver path came with the symlink-race
 * fixes of 2026 (3.4.3/3.5.0), so older receivers are not relied on. rsync's SENDER
 * follows a symlinked parent in every version (it sends what is behind it), so
 * lipsync itself never lists such a path (N5 of docs/sync-semantics.md); the
 * receiver's refusal is the second line, for a swap between lipsync's check and
 * rsync's write. An older rsync therefore keeps working, with a warning (see
 * rsyncSymlinkWarning): refusing it would stop most servers (Debian 12 ships 3.2.7)
 * for a race that lipsync's own checks already narrow to its check-to-write window.
 */
export const SAFE_PARENT_RSYNC_VERSION = '3.5.0';

/**
 * The warning for an rsync older than SAFE_PARENT_RSYNC_VERSION on either side (null
 * when both are recent enough or unknown): what it means and how to fix it.
 */
export function rsyncSymlinkWarning(local: string | null, remote: string | null, host: string): string | null {
  const old: string[] = [];
  if (local && !versionAtLeast(local, SAFE_PARENT_RSYNC_VERSION)) old.push(`rsync ${local} here`);
  if (remote && !versionAtLeast(remote, SAFE_PARENT_RSYNC_VERSION)) old.push(`rsync ${remote} on ${host}`);
  if (!old.length) return null;
  return (
    `${old.join(' and ')}: older than ${SAFE_PARENT_RSYNC_VERSION}, whose receiver refuses to write through a ` +
    `folder swapped for a symlink while it runs. lipsync checks every path itself and syncs on; ` +
    `upgrade rsync to ${SAFE_PARENT_RSYNC_VERSION} or newer to close that window too.`
  );
}

/** '3.2.7' from `rsync  version 3.2.7  protocol version 31` (or 'rsync version v3.2.7 ...'); null if absent. */
export function parseRsyncVersion(text: string): string | null {
  const m = /\bversion\s+v?(\d+\.\d+(?:\.\d+)?[0-9A-Za-z.-]*)/.exec(text);
  return m ? (m[1] as string) : null;
}

/** The local rsync's version, or null when `cmd` cannot be run. */
export async function rsyncVersion(cmd = 'rsync'): Promise<string | null> {
  try {
    const r = await run(cmd, ['--version'], { timeoutMs: 10_000 });
    return parseRsyncVersion(r.stdout);
  } catch {
    return null;
  }
}

/** Compares dotted versions numerically ('3.10.0' > '3.9.9'); suffixes like 'pre1' are ignored. */
export function versionAtLeast(v: string, min: string): boolean {
  const nums = (s: string) => s.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const a = nums(v);
  const b = nums(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}
