/**
 * The remote LOCK, both backends: it serializes clients writing one server folder.
 * It is the directory ROOT/.lipsync/lock (LOCK_DIR), created with a plain (non -p)
 * mkdir, which is atomic on POSIX file systems (exactly one of several racing
 * mkdirs succeeds; on NFS too, v3 and later). Its `owner` file says who holds it;
 * the holder touches that file now and then (refresh) so the others can tell a
 * live lock from one whose holder died (older than the TTL: broken). Ages are
 * computed with the SERVER's clock (file mtimes are set by it and compared with
 * its `date +%s`), so a client clock that is off does not matter; see
 * RemoteOps.lock (ops.ts) for the whole contract.
 *
 * Local remotes: LocalLock (node:fs). ssh remotes: the scripts below, run by
 * SshOps (ops-ssh.ts) through the script layer (script.ts), which checks the root
 * and .lipsync first.
 */

import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, rename as fsRename, rm, utimes, writeFile } from 'node:fs/promises';
import { LipsyncError, fsError } from '../errors.js';
import { LOCK_BREAK_DIR, LOCK_DIR, LOCK_OWNER_FILE, META_DIR } from '../../../shared/layout.js';
import { absPath } from './paths.js';
import { shQuote } from './ssh.js';
import { OUT, outLines } from './script.js';

/** A lock-break dir older than this was left by a client that died mid-break. */
export const LOCK_BREAK_STALE_MS = 30_000;

export interface LockResult {
  acquired: boolean;
  /** When not acquired: the owner text of the current holder ('' if it has not written it yet). */
  holder?: string;
  /** When acquired by breaking a stale lock: the owner text of that dead holder. */
  brokeStale?: string;
  /** Whether the meta dirs were made by the same call, as prepareMeta makes them (RemoteOps.lock). */
  metaReady?: boolean;
}

/** The owner text as stored: trailing newlines dropped (the shell's $(cat) drops them too). */
export function checkOwner(owner: string): string {
  const o = owner.replace(/\n+$/, '');
  if (o === '' || o.includes('\0')) {
    throw new LipsyncError('unknown', `Invalid lock owner ${JSON.stringify(owner)}.`, {
      detail: 'the owner text must be non-empty and contain no NUL',
    });
  }
  return o;
}

export function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new LipsyncError('unknown', `Invalid lock TTL ${ttlMs} ms.`);
  return ttlMs;
}

/** Where a lock is renamed aside before it is removed (`stale`: broken; `released`: unlocked). */
function asideName(why: 'stale' | 'released'): string {
  return `${META_DIR}/lock.${why}.${randomBytes(8).toString('hex')}`;
}

// ---------------------------------------------------------------------------
// Local

/** The lock of a local remote root (an absolute path). */
export class LocalLock {
  constructor(private readonly root: string) {}

  private get lockDir(): string {
    return absPath(this.root, LOCK_DIR);
  }

  private async readOwner(): Promise<string | null> {
    try {
      return (await readFile(absPath(this.root, LOCK_OWNER_FILE), 'utf8')).replace(/\n+$/, '');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
      throw fsError(e, absPath(this.root, LOCK_OWNER_FILE), 'read');
    }
  }

  /** ms since `p` was modified, null if it does not exist. */
  private async ageMs(p: string): Promise<number | null> {
    try {
      return Date.now() - (await lstat(p)).mtimeMs;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw fsError(e, p, 'read');
    }
  }

  private async isStale(ttlMs: number): Promise<boolean> {
    const age = (await this.ageMs(absPath(this.root, LOCK_OWNER_FILE))) ?? (await this.ageMs(this.lockDir));
    return age !== null && age > ttlMs;
  }

  /** mkdir `dir`: true if created, false if it exists. */
  private async tryMkdir(dir: string): Promise<boolean> {
    try {
      await mkdir(dir);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fsError(e, dir, 'create');
    }
  }

  private async take(owner: string): Promise<boolean> {
    if (!(await this.tryMkdir(this.lockDir))) return false;
    const file = absPath(this.root, LOCK_OWNER_FILE);
    const tmp = `${file}.tmp`;
    try {
      await writeFile(tmp, owner);
      await fsRename(tmp, file);
    } catch (e) {
      await rm(this.lockDir, { recursive: true, force: true }).catch(() => undefined);
      throw fsError(e, file, 'write');
    }
    return true;
  }

  /** Under LOCK_BREAK_DIR: if the lock is (still) stale, renames it aside and removes it. Returns the dead holder's text. */
  private async breakStale(ttlMs: number): Promise<string | null> {
    const breaker = absPath(this.root, LOCK_BREAK_DIR);
    if (!(await this.tryMkdir(breaker))) {
      const age = await this.ageMs(breaker);
      if (age === null || age <= LOCK_BREAK_STALE_MS) return null;
      await rm(breaker, { recursive: true, force: true }).catch(() => undefined);
      if (!(await this.tryMkdir(breaker))) return null;
    }
    try {
      if (!(await this.isStale(ttlMs))) return null;
      const dead = (await this.readOwner()) ?? '';
      const aside = absPath(this.root, asideName('stale'));
      try {
        await fsRename(this.lockDir, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw fsError(e, this.lockDir, 'move');
      }
      await rm(aside, { recursive: true, force: true }).catch(() => undefined);
      return dead;
    } finally {
      await rm(breaker, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** As RemoteOps.lock; the caller has checked the root and .lipsync (never through a planted link). */
  async lock(owner: string, ttlMs: number): Promise<LockResult> {
    const o = checkOwner(owner);
    checkTtl(ttlMs);
    const meta = absPath(this.root, META_DIR);
    try {
      await mkdir(meta, { recursive: true });
    } catch (e) {
      throw fsError(e, meta, 'create');
    }
    if (await this.take(o)) return { acquired: true };
    if (await this.isStale(ttlMs)) {
      const dead = await this.breakStale(ttlMs);
      if (await this.take(o)) return dead === null ? { acquired: true } : { acquired: true, brokeStale: dead };
    }
    return { acquired: false, holder: (await this.readOwner()) ?? '' };
  }

  /** As RemoteOps.refreshLock. */
  async refresh(owner: string): Promise<boolean> {
    const o = checkOwner(owner);
    if ((await this.readOwner()) !== o) return false;
    const now = new Date();
    try {
      await utimes(absPath(this.root, LOCK_OWNER_FILE), now, now);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw fsError(e, absPath(this.root, LOCK_OWNER_FILE), 'write');
    }
  }

  /** As RemoteOps.unlock. */
  async unlock(owner: string): Promise<boolean> {
    const o = checkOwner(owner);
    if ((await this.readOwner()) !== o) return false;
    const aside = absPath(this.root, asideName('released'));
    try {
      await fsRename(this.lockDir, aside);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw fsError(e, this.lockDir, 'move');
    }
    await rm(aside, { recursive: true, force: true }).catch(() => undefined);
    return true;
  }
}

// ---------------------------------------------------------------------------
// ssh

/** Shell functions of the lock scripts; need R, M (R/.lipsync), L (the lock dir), B (the break dir). */
const LOCK_FUNCTIONS = `
M="$R/${META_DIR}"; L="$R/${LOCK_DIR}"; B="$R/${LOCK_BREAK_DIR}"
lipsync_mtime() {
  t=$(stat -c %Y -- "$1" 2>/dev/null) || t=$(stat -f %m -- "$1" 2>/dev/null) || t=
  case $t in ''|*[!0-9]*) return 1 ;; esac
  printf '%s' "$t"
}
lipsync_age() {
  t=$(lipsync_mtime "$1") || return 1
  n=$(date +%s)
  case $n in ''|*[!0-9]*) return 1 ;; esac
  printf '%s' $((n - t))
}
lipsync_stale() {
  a=$(lipsync_age "$L/owner") || a=$(lipsync_age "$L") || return 1
  [ "$a" -gt "$TTL" ]
}
lipsync_take() {
  if ! err=$(mkdir -- "$L" 2>&1); then
    case $err in *'File exists'*) return 1 ;; esac
    if [ -e "$L" ] || [ -L "$L" ]; then return 1; fi
    printf '%s\n' "$err" >&2; exit 1
  fi
  if printf '%s' "$O" > "$L/owner.tmp" && mv -f -- "$L/owner.tmp" "$L/owner"; then return 0; fi
  rm -rf -- "$L"
  exit 1
}
lipsync_break() {
  if ! mkdir -- "$B" 2>/dev/null; then
    a=$(lipsync_age "$B") && [ "$a" -gt ${Math.round(LOCK_BREAK_STALE_MS / 1000)} ] && rmdir -- "$B" 2>/dev/null && mkdir -- "$B" 2>/dev/null || return 1
  fi
  rc=1
  if lipsync_stale; then
    S=$(cat -- "$L/owner" 2>/dev/null)
    if mv -- "$L" "$A" 2>/dev/null; then rm -rf -- "$A"; rc=0; fi
  fi
  rmdir -- "$B" 2>/dev/null
  return $rc
}`;

/**
 * The lock script (after the root check and META_CHECK): takes the lock for `owner`,
 * breaking it when stale by the server's clock. Read by lockAnswer.
 */
export function lockScript(owner: string, ttlMs: number, root: string): string {
  const o = checkOwner(owner);
  const ttlSec = Math.max(1, Math.ceil(checkTtl(ttlMs) / 1000));
  const aside = absPath(root, asideName('stale'));
  return `O=${shQuote(o)}; TTL=${ttlSec}; A=${shQuote(aside)}
${LOCK_FUNCTIONS}
mkdir -p -- "$M" || exit 1
if lipsync_take; then printf '${OUT}lock:acquired\\n'; exit 0; fi
if lipsync_stale; then
  S=; lipsync_break; broke=$?
  if lipsync_take; then
    if [ "$broke" -eq 0 ]; then printf '${OUT}lock:broke\\n${OUT}holder:%s' "$S"; else printf '${OUT}lock:acquired\\n'; fi
    exit 0
  fi
fi
printf '${OUT}lock:held\\n${OUT}holder:'
cat -- "$L/owner" 2>/dev/null
exit 0`;
}

/** Parses the lock script's answer: `lock:STATUS` then, for held/broke, `holder:` and the owner text to the end. */
function lockAnswer(stdout: string): { status: string | undefined; holder: string } {
  const at = stdout.indexOf(`${OUT}holder:`);
  const head = at === -1 ? stdout : stdout.slice(0, at);
  const status = outLines(head)
    .find((l) => l.startsWith('lock:'))
    ?.slice('lock:'.length)
    .trim();
  const holder = at === -1 ? '' : stdout.slice(at + `${OUT}holder:`.length).replace(/\n+$/, '');
  return { status, holder };
}

/** The lock script's answer as a LockResult; `host` names the server in an error. */
export function lockResult(stdout: string, host: string): LockResult {
  const { status, holder } = lockAnswer(stdout);
  if (status === 'acquired') return { acquired: true };
  if (status === 'broke') return { acquired: true, brokeStale: holder };
  if (status === 'held') return { acquired: false, holder };
  throw new LipsyncError('unknown', `Unexpected answer from ${host} while taking the lock.`, {
    detail: stdout.slice(-2000),
  });
}

/** Touches the owner file if the lock is `owner`'s; prints refresh:ok or refresh:lost (refreshed). */
export function refreshScript(owner: string): string {
  const o = checkOwner(owner);
  return `O=${shQuote(o)}; L="$R/${LOCK_DIR}"
if c=$(cat -- "$L/owner" 2>/dev/null) && [ "$c" = "$O" ] && touch -c -- "$L/owner" 2>/dev/null; then
  printf '${OUT}refresh:ok\\n'
else
  printf '${OUT}refresh:lost\\n'
fi`;
}

/** Whether refreshScript refreshed the lock. */
export function refreshed(stdout: string): boolean {
  return outLines(stdout).includes('refresh:ok');
}

/** Succeeds when the lock L was O's and is gone: renamed aside to A, then removed. */
const RELEASE_IF_OURS = `c=$(cat -- "$L/owner" 2>/dev/null) && [ "$c" = "$O" ] && mv -- "$L" "$A" 2>/dev/null && rm -rf -- "$A"`;

/** Removes the lock if it is `owner`'s; prints unlock:ok or unlock:no (unlocked). */
export function unlockScript(owner: string, root: string): string {
  const o = checkOwner(owner);
  const aside = absPath(root, asideName('released'));
  return `O=${shQuote(o)}; L="$R/${LOCK_DIR}"; A=${shQuote(aside)}
if ${RELEASE_IF_OURS}; then
  printf '${OUT}unlock:ok\\n'
else
  printf '${OUT}unlock:no\\n'
fi`;
}

/**
 * The lock held for one script only (the small files' put, rule P5 of docs/sync-semantics.md),
 * with R set and after the root check: takes the lock for `owner` when it is free, else prints
 * the NUL-ended field `locked` and ends the script (a held or stale lock is left to PairLock,
 * which waits for it or breaks it); lets it go when the script ends, however it ends (an EXIT
 * trap, as unlockScript). A script cut off with its ssh leaves the lock to expire (TTL).
 */
export function heldForScript(owner: string, ttlMs: number, root: string): string {
  const o = checkOwner(owner);
  const ttlSec = Math.max(1, Math.ceil(checkTtl(ttlMs) / 1000));
  const aside = absPath(root, asideName('released'));
  return `O=${shQuote(o)}; TTL=${ttlSec}; A=${shQuote(aside)}
${LOCK_FUNCTIONS}
if ! lipsync_take; then printf 'locked\\0'; exit 0; fi
trap '${RELEASE_IF_OURS} || :' EXIT`;
}

/** Whether unlockScript removed the lock. */
export function unlocked(stdout: string): boolean {
  return outLines(stdout).includes('unlock:ok');
}
