/**
 * The change marker on the server: `<root>/.lipsync/poll-marker-<clientId>`
 * (one per client, so several clients can poll one server), and listing with
 * GNU find what changed since it. Used by the poll mode of the change feed
 * (watch-poll.ts); set by a clean stop (pair/clean-stop.ts) and read by the
 * first cycle after it (cycle/collect-remote.ts) to list what changed on the
 * server meanwhile; and read by walkwatch's first walk (`sinceMarkerId`,
 * watch-inotify-*.ts).
 *
 * Each listing creates a NEW marker (dated 1 s in the past when GNU `touch -d`
 * is there, so a change in the same clock tick is reported twice rather than
 * never), runs
 * `find ROOT \( -path ROOT/.lipsync -prune \) -o -cnewer MARKER -printf …`
 * (ctime: rsync sets mtimes back, but can't set ctimes), then renames the new
 * marker over the old one, so nothing changed during the find is missed.
 * Every path whose ctime changed is reported as 'modify'; a folder whose
 * entries changed (a deletion, a rename) is reported too: the caller compares
 * that folder's listing to find deletions. Stale markers of clients that are
 * gone stay in .lipsync/ (a few bytes). Local remotes run the same script with
 * the local /bin/sh.
 */

import type { Excluder, RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError } from '../errors.js';
import { shQuote } from './ssh.js';
import { isIgnoredPath } from '../excludes.js';
import { META_DIR, isMetaPath, pollMarkerFile } from '../../../shared/layout.js';
import { FindListParser } from './find-parse.js';
import { absPath, globEscape, normalizeRoot } from './paths.js';
import { EXIT_META_FAILED, PRINT_STREAM_MARKER, requireRootScript, runScript, scriptFailure } from './script.js';
import { GatedOutput } from './gated-output.js';
import type { RemoteChange } from './watch.js';

const POLL_BATCH = 1_000;
const POLL_TIMEOUT_MS = 10 * 60_000;
/** Poll script exit code: there was no marker yet (one was created). */
const EXIT_FIRST_POLL = 10;

const CLIENT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** The marker file's name (relative to the root) for a client. */
export function pollMarkerPath(clientId: string): string {
  if (!CLIENT_ID_RE.test(clientId)) throw new Error(`invalid client id ${JSON.stringify(clientId)}`);
  return pollMarkerFile(clientId);
}

/** The poll script (see the module comment). Exit 10: first poll, a marker was created. */
export function pollScript(root: string, clientId: string): string {
  const marker = absPath(root, pollMarkerPath(clientId));
  const meta = absPath(root, META_DIR);
  return `${requireRootScript(root)}
D=${shQuote(meta)}
M=${shQuote(marker)}
N="$M.new"
mkdir -p -- "$D" 2>/dev/null || { echo "lipsync: cannot create $D" >&2; exit ${EXIT_META_FAILED}; }
# A marker dated 1 s back (GNU touch), else now: a change in the same clock tick as the marker is then
# reported twice rather than never (-cnewer means strictly newer).
lipsync_mark() {
  t=$(date +%s 2>/dev/null)
  case $t in ''|*[!0-9]*) t= ;; esac
  if [ -z "$t" ] || ! touch -d "@$((t - 1))" -- "$1" 2>/dev/null; then
    : > "$1" || { echo "lipsync: cannot write $1" >&2; exit ${EXIT_META_FAILED}; }
  fi
}
if [ ! -f "$M" ]; then
  lipsync_mark "$M"
  exit ${EXIT_FIRST_POLL}
fi
lipsync_mark "$N"
${PRINT_STREAM_MARKER}
find -H "$R" \\( -path ${shQuote(globEscape(meta))} -prune \\) -o -cnewer "$M" -printf '%y\\0%s\\0%T@\\0%m\\0%i\\0%l\\0%P\\0'
rc=$?
if [ $rc -eq 0 ]; then mv -f -- "$N" "$M" || exit ${EXIT_META_FAILED}; else rm -f -- "$N"; fi
exit $rc`;
}

/**
 * Lists what changed on the server since the marker `markerId` (GNU find, see
 * pollScript) in batches to `onChanges`, and moves the marker to now (− 1 s).
 * 'no-marker': there was none (one was created; the caller must compare
 * everything); 'partial': some folders could not be read (the marker was kept).
 */
export async function listChangedSince(
  remote: RemoteSpec,
  ssh: SshOptions,
  root: string,
  markerId: string,
  excluder: Excluder | undefined,
  onChanges: (changes: RemoteChange[]) => void,
): Promise<{ result: 'ok' | 'no-marker' | 'partial'; detail?: string }> {
  const r = normalizeRoot(root);
  const parser = new FindListParser('');
  let batch: RemoteChange[] = [];
  const flush = (): void => {
    if (batch.length > 0) {
      const b = batch;
      batch = [];
      onChanges(b);
    }
  };
  const out = new GatedOutput((data) => {
    for (const e of parser.push(data)) {
      const isDir = e.kind === 'dir';
      if (isMetaPath(e.path)) continue;
      if (isIgnoredPath(e.path, isDir, excluder)) continue;
      batch.push({ path: e.path, isDir, kind: 'modify' });
      if (batch.length >= POLL_BATCH) flush();
    }
  });
  const res = await runScript(remote, ssh, pollScript(r, markerId), {
    timeoutMs: POLL_TIMEOUT_MS,
    onStdout: out.onStdout,
  });
  flush();
  if (res.code === EXIT_FIRST_POLL) return { result: 'no-marker' };
  if (res.code === 1 && out.passed) return { result: 'partial', detail: res.stderr.trim().split('\n').pop() ?? '' };
  if (res.code !== 0 || res.timedOut) throw scriptFailure(remote, ssh, res, r);
  if (out.error !== null || !out.passed || parser.incomplete()) {
    throw new LipsyncError('unknown', `Unexpected answer while looking for changes in ${r}.`, {
      detail: `${String(out.error ?? 'incomplete output')}\n${res.stderr.slice(-2000)}`,
    });
  }
  return { result: 'ok' };
}

/**
 * Sets the marker `markerId` to `backSec` seconds before the server's now: what
 * changed after that is listed by the next listChangedSince.
 */
export async function setChangeMarker(
  remote: RemoteSpec,
  ssh: SshOptions,
  root: string,
  markerId: string,
  backSec: number,
): Promise<void> {
  const r = normalizeRoot(root);
  const script = `${requireRootScript(r)}
D=${shQuote(absPath(r, META_DIR))}
M=${shQuote(absPath(r, pollMarkerPath(markerId)))}
mkdir -p -- "$D" 2>/dev/null || { echo "lipsync: cannot create $D" >&2; exit ${EXIT_META_FAILED}; }
t=$(date +%s 2>/dev/null)
case $t in ''|*[!0-9]*) echo "lipsync: no clock" >&2; exit ${EXIT_META_FAILED} ;; esac
touch -d "@$((t - ${Math.max(0, Math.floor(backSec))}))" -- "$M.new" && mv -f -- "$M.new" "$M" || exit ${EXIT_META_FAILED}`;
  const res = await runScript(remote, ssh, script, { timeoutMs: 30_000 });
  if (res.code !== 0 || res.timedOut) throw scriptFailure(remote, ssh, res, r);
}
