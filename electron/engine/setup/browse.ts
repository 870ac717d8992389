/**
 * browseRemote: the subdirectories of a remote folder, by key login, for the
 * wizard's folder picker (a POSIX sh script; its NUL-separated output parsed here).
 */

import type { BrowseRemoteInput, BrowseRemoteResult } from '../../../shared/setup.js';
import { classifyFailure, LipsyncError } from '../errors.js';
import { shQuote, sshExec } from '../remote/ssh.js';
import { checkHost, checkUser, failureContext, keyLoginOptions, targetOf, type SetupContext } from './context.js';

const BROWSE_MAGIC = 'LIPSYNC-BROWSE';

/** browseRemote's script output: magic, the absolute path, then names, each NUL-terminated. */
export function parseBrowseOutput(out: string): BrowseRemoteResult {
  const parts = out.split('\0');
  if (parts[0] !== BROWSE_MAGIC || parts.length < 3 || parts[parts.length - 1] !== '') {
    throw new LipsyncError('unknown', 'The server sent an unexpected folder listing (too many folders?).', {
      detail: out.slice(0, 500),
    });
  }
  const path = parts[1] as string;
  const dirs = parts
    .slice(2, -1)
    .filter((n) => n !== '' && !n.startsWith('.'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0));
  return { path, dirs };
}

/** The remote script listing the subdirectories of `path` (see parseBrowseOutput). */
export function browseScript(path: string): string {
  return `p=${shQuote(path === '' ? '~' : path)}
case $p in
  '~') p=$HOME ;;
  '~/'*) p=$HOME/\${p#??} ;;
esac
if [ ! -e "$p" ]; then echo "lipsync: $p: No such file or directory" >&2; exit 3; fi
if [ ! -d "$p" ]; then echo "lipsync: $p: Not a directory" >&2; exit 4; fi
cd -- "$p" || exit 5
printf '%s\\000%s\\000' ${BROWSE_MAGIC} "$PWD"
for f in *; do
  if [ -d "$f" ]; then printf '%s\\000' "$f"; fi
done
exit 0`;
}

/**
 * The subdirectories of a remote folder (default: the home directory), by key
 * login (BatchMode). Names starting with '.' are left out; symlinks to
 * directories are included. Returns the absolute path listed.
 */
export async function browseRemote(p: BrowseRemoteInput, ctx: SetupContext): Promise<BrowseRemoteResult> {
  checkHost(p.host);
  checkUser(p.user);
  const path = p.path ?? '~';
  const r = await sshExec(targetOf(p), keyLoginOptions(ctx, p.identityFile), browseScript(path), { timeoutMs: 60_000 });
  if (r.code === 0) return parseBrowseOutput(r.stdout);
  const where = `${p.user ? `${p.user}@` : ''}${p.host}`;
  if (r.code === 3) {
    throw new LipsyncError('remote-missing', `The folder ${path} does not exist on ${where}.`, {
      detail: r.stderr.trim(),
    });
  }
  if (r.code === 4) {
    throw new LipsyncError('remote-not-dir', `${path} on ${where} is not a folder.`, { detail: r.stderr.trim() });
  }
  if (r.code === 5) {
    throw new LipsyncError('permission-denied', `No permission to open the folder ${path} on ${where}.`, {
      detail: r.stderr.trim(),
    });
  }
  throw classifyFailure('ssh', r.code, r.stderr, { ...failureContext(p), path });
}
