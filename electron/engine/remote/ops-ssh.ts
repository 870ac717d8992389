/**
 * The ssh backend of RemoteOps (ops.ts): ONE remote script per call, run by the
 * script layer (script.ts: `ssh … /bin/sh -s`, the script on stdin, its failures
 * classified in errors.ts); a fixed POSIX sh script in which every path is
 * shQuote()d (see ssh.ts for why the script travels on stdin). The lock's
 * scripts are in lock.ts.
 */

import { randomBytes } from 'node:crypto';
import type { SshOptions } from '../types.js';
import { LipsyncError } from '../errors.js';
import type { RunResult } from '../proc/run.js';
import { INCOMING_DIR, MARKER_FILE, META_DIR, PARTIAL_DIR, TRASH_DIR } from '../../../shared/layout.js';
import type { MoveResult, RemoteOps, RootState } from './ops.js';
import { lockResult, lockScript, refreshed, refreshScript, unlocked, unlockScript, type LockResult } from './lock.js';
import { INCOMING_STALE_DAYS, checkIncomingPrefix, trashCutoff } from './meta.js';
import { absPath, normalizeRelPath } from './paths.js';
import { parseRsyncVersion } from './rsync-version.js';
import { closeMaster, shQuote } from './ssh.js';
import { closeSessions } from './session.js';
import { META_CHECK, OUT, ROOT_CHECK, outLines, runScript, scriptFailure, type SshRemote } from './script.js';

/** Prints the marker file $M's contents after a tag (or a 'none' line): read by parseMarker. */
const PRINT_MARKER = `if [ -f "$M" ]; then printf '${OUT}marker:'; cat -- "$M"; else printf '${OUT}none\\n'; fi`;

/** The pair id PRINT_MARKER printed, or null when there is no marker. */
function parseMarker(stdout: string): string | null {
  const at = stdout.indexOf(`${OUT}marker:`);
  return at === -1 ? null : stdout.slice(at + `${OUT}marker:`.length).trim();
}

const PROBE = `
if command -v rsync >/dev/null 2>&1; then
  v=$(rsync --version 2>/dev/null | head -n 1)
  printf '${OUT}rsync:%s\\n' "$v"
else
  printf '${OUT}rsync:\\n'
fi
if [ -d "$R" ]; then
  if [ -r "$R" ] && [ -w "$R" ] && [ -x "$R" ]; then s=dir; else s=no-access; fi
elif [ -e "$R" ] || [ -L "$R" ]; then
  s=not-dir
else
  d=$R
  while :; do
    d=\${d%/*}
    [ -z "$d" ] && d=/
    if [ -e "$d" ] || [ "$d" = / ]; then break; fi
  done
  if [ -d "$d" ] && [ ! -x "$d" ]; then s=no-access; else s=missing; fi
fi
printf '${OUT}root:%s\\n' "$s"`;

/**
 * lipsync_dirs PATH [mk]: succeeds when no folder between $R and PATH (an absolute path
 * below $R) is a symlink or a file (N5); with mk, the missing ones are made, one mkdir
 * each, and checked again after it. lipsync_mv runs it just before each mv, and again
 * for the target after it: a folder swapped for a symlink in between (another client
 * racing us) is noticed and the move undone. The window left is between the check and
 * the mv (a shell has no renameat).
 */
const MOVE_FUNCTIONS = `
case $R in */) P=$R ;; *) P=$R/ ;; esac
lipsync_dirs() {
  rest=\${1#"$P"}; d=\${P%/}
  while :; do
    case $rest in */*) ;; *) return 0 ;; esac
    d=$d/\${rest%%/*}; rest=\${rest#*/}
    if [ -L "$d" ]; then return 1; fi
    [ -d "$d" ] && continue
    [ -e "$d" ] && return 1
    [ "$2" = mk ] || return 0
    mkdir -- "$d" 2>/dev/null
    if [ -L "$d" ] || [ ! -d "$d" ]; then return 1; fi
  done
}
lipsync_fail() { printf '${OUT}mv:%s:fail:%s\\n' "$1" "$(printf '%s' "$2" | tr '\\n' ' ')"; }
lipsync_mv() {
  if ! lipsync_dirs "$2"; then lipsync_fail "$1" "a folder above it is a symlink or a file"; return 0; fi
  if [ ! -e "$2" ] && [ ! -L "$2" ]; then printf '${OUT}mv:%s:missing\\n' "$1"; return 0; fi
  if [ "$2" = "$3" ]; then printf '${OUT}mv:%s:ok\\n' "$1"; return 0; fi
  if ! lipsync_dirs "$3" mk; then lipsync_fail "$1" "a folder above the target is a symlink or a file"; return 0; fi
  tt=
  if [ -e "$3" ] || [ -L "$3" ]; then
    tt=$4; n=0
    while [ -e "$tt" ] || [ -L "$tt" ]; do n=$((n + 1)); tt="$4.$n"; done
    if ! lipsync_dirs "$tt" mk; then lipsync_fail "$1" "a folder above the trash is a symlink or a file"; return 0; fi
    if ! err=$(mv -f -- "$3" "$tt" 2>&1); then lipsync_fail "$1" "$err"; return 0; fi
  fi
  if ! err=$(mv -f -- "$2" "$3" 2>&1); then
    [ -n "$tt" ] && mv -f -- "$tt" "$3" 2>/dev/null
    lipsync_fail "$1" "$err"; return 0
  fi
  if ! lipsync_dirs "$3"; then
    mv -f -- "$3" "$2" 2>/dev/null
    lipsync_fail "$1" "a folder above the target became a symlink during the move (moved back)"; return 0
  fi
  printf '${OUT}mv:%s:ok\\n' "$1"
}`;

/** Removes $R/.lipsync/incoming/PREFIX* (the prefix is checked: a glob of safe characters). */
function clearIncomingScript(prefix: string): string {
  return `for d in "$R/${INCOMING_DIR}/"${checkIncomingPrefix(prefix)}*; do
  if [ -e "$d" ] || [ -L "$d" ]; then rm -rf -- "$d" || exit 1; fi
done`;
}

/** The meta dirs a transfer needs (rsync creates neither its partial nor its temp dir). */
const PREPARE_META = `mkdir -p -- "$R/${PARTIAL_DIR}" "$R/${TRASH_DIR}" "$R/${INCOMING_DIR}"`;

/** The operations on a server's root: one script per call (script.ts). */
export class SshOps implements RemoteOps {
  constructor(
    private readonly remote: SshRemote,
    private readonly ssh: SshOptions,
    private readonly timeoutMs = 120_000,
  ) {}

  /** Runs `body` with R set to the quoted root; throws LipsyncError on failure. */
  private async exec(body: string): Promise<RunResult> {
    const r = await runScript(this.remote, this.ssh, `R=${shQuote(this.remote.path)}\n${body}\n`, {
      timeoutMs: this.timeoutMs,
    });
    if (r.code === 0 && !r.timedOut) return r;
    throw scriptFailure(this.remote, this.ssh, r, this.remote.path, this.timeoutMs);
  }

  async probe(): Promise<{ rsyncVersion: string | null; root: RootState }> {
    const lines = outLines((await this.exec(PROBE)).stdout);
    const v =
      lines
        .find((l) => l.startsWith('rsync:'))
        ?.slice('rsync:'.length)
        .trim() ?? '';
    const root = lines
      .find((l) => l.startsWith('root:'))
      ?.slice('root:'.length)
      .trim();
    if (root !== 'dir' && root !== 'missing' && root !== 'not-dir' && root !== 'no-access') {
      throw new LipsyncError(
        'unknown',
        `Unexpected answer from ${this.remote.host} while checking ${this.remote.path}.`,
        { detail: lines.join('\n') },
      );
    }
    return { rsyncVersion: v === '' ? null : (parseRsyncVersion(v) ?? v), root };
  }

  async createRoot(): Promise<void> {
    await this.exec('mkdir -p -- "$R"');
  }

  async prepareMeta(leftoverPrefix?: string): Promise<void> {
    const clear = leftoverPrefix === undefined ? '' : `\n${clearIncomingScript(leftoverPrefix)}`;
    await this.exec(`${ROOT_CHECK}${META_CHECK}\n${PREPARE_META}${clear}`);
  }

  async clearIncoming(prefix: string): Promise<void> {
    await this.exec(`${ROOT_CHECK}${META_CHECK}\n${clearIncomingScript(prefix)}`);
  }

  async rename(moves: { from: string; to: string }[], trashDir: string): Promise<MoveResult[]> {
    const trash = normalizeRelPath(trashDir);
    const checked = moves.map((m) => ({ from: normalizeRelPath(m.from), to: normalizeRelPath(m.to) }));
    if (moves.length === 0) return [];
    const root = this.remote.path;
    const calls = checked.map(
      (m, i) =>
        `lipsync_mv ${i} ${shQuote(absPath(root, m.from))} ${shQuote(absPath(root, m.to))} ${shQuote(absPath(root, `${trash}/${m.to}`))}`,
    );
    const r = await this.exec(`${ROOT_CHECK}\n${MOVE_FUNCTIONS}\n${calls.join('\n')}`);
    const byIndex = new Map<number, { ok: boolean; reason?: string }>();
    for (const line of outLines(r.stdout)) {
      const m = /^mv:(\d+):(ok|missing|fail)(?::(.*))?$/.exec(line);
      if (!m) continue;
      const status = m[2];
      byIndex.set(
        Number(m[1]),
        status === 'ok'
          ? { ok: true }
          : { ok: false, reason: status === 'missing' ? 'missing' : (m[3] ?? '').trim() || 'failed' },
      );
    }
    return moves.map((m, i) => ({
      from: m.from,
      to: m.to,
      ...(byIndex.get(i) ?? { ok: false, reason: 'no answer from the server' }),
    }));
  }

  async readMarker(): Promise<string | null> {
    return parseMarker((await this.exec(`M="$R/${MARKER_FILE}"\n${PRINT_MARKER}`)).stdout);
  }

  async claimMarker(pairId: string): Promise<string> {
    // ln fails if another client's marker is there (link(2) never replaces);
    // where the file system has no hard links, mv -f if there is still none.
    const tmp = `.${randomBytes(6).toString('hex')}.tmp`;
    const r = await this.exec(
      `${ROOT_CHECK}
M="$R/${MARKER_FILE}"; T="$M${tmp}"
mkdir -p -- "$R/${META_DIR}" && printf '%s\\n' ${shQuote(pairId)} > "$T" || exit 1
ln -- "$T" "$M" 2>/dev/null || [ -f "$M" ] || mv -f -- "$T" "$M" || exit 1
rm -f -- "$T"
${PRINT_MARKER}`,
    );
    const now = parseMarker(r.stdout);
    if (!now)
      throw new LipsyncError(
        'remote-missing',
        `Could not write the lipsync marker in ${this.remote.path} on the server.`,
        {
          fix: 'Check that the folder is writable by your ssh user and that the disk is not full, then retry.',
        },
      );
    return now;
  }

  async lock(owner: string, ttlMs: number): Promise<LockResult> {
    const script = lockScript(owner, ttlMs, this.remote.path);
    const meta = `if ${PREPARE_META} 2>/dev/null; then printf '${OUT}meta:ok\\n'; fi`;
    const r = await this.exec(`${ROOT_CHECK}${META_CHECK}\n${meta}\n${script}`);
    return { ...lockResult(r.stdout, this.remote.host), metaReady: outLines(r.stdout).includes('meta:ok') };
  }

  async refreshLock(owner: string): Promise<boolean> {
    const script = refreshScript(owner);
    return refreshed((await this.exec(script)).stdout);
  }

  async unlock(owner: string): Promise<boolean> {
    const script = unlockScript(owner, this.remote.path);
    return unlocked((await this.exec(script)).stdout);
  }

  async purgeTrash(olderThanDays: number, now?: Date): Promise<number> {
    const cutoff = trashCutoff(olderThanDays, now).replace(/-/g, '');
    const r = await this.exec(
      `${ROOT_CHECK}${META_CHECK}
T="$R/${TRASH_DIR}"; C=${cutoff}; n=0
I="$R/${INCOMING_DIR}"
if [ -d "$I" ]; then find "$I" -mindepth 1 -maxdepth 1 -mtime +${INCOMING_STALE_DAYS - 1} -exec rm -rf -- {} + 2>/dev/null; fi
if [ -d "$T" ]; then
  for d in "$T"/*; do
    name=\${d##*/}
    case $name in [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ;; *) continue ;; esac
    y=\${name%%-*}; rest=\${name#*-}; m=\${rest%%-*}; dd=\${rest#*-}
    if [ "$y$m$dd" -lt "$C" ] && [ -d "$d" ] && [ ! -L "$d" ] && rm -rf -- "$d"; then n=$((n + 1)); fi
  done
fi
printf '${OUT}purged:%s\\n' "$n"`,
    );
    const line = outLines(r.stdout).find((l) => l.startsWith('purged:'));
    const n = line === undefined ? NaN : Number(line.slice('purged:'.length));
    if (!Number.isInteger(n)) {
      throw new LipsyncError('unknown', `Unexpected answer from ${this.remote.host} while emptying the trash.`, {
        detail: r.stdout.slice(-2000),
      });
    }
    return n;
  }

  async close(): Promise<void> {
    closeSessions(this.remote, this.ssh);
    await closeMaster(this.remote, this.ssh);
  }
}
