/**
 * Small files through the kept-open session (rules W6 and W7 of docs/sync-semantics.md):
 * a batch of small files goes to or comes from the server as ONE script in the session
 * (session.ts), one round trip, where an rsync run over the ControlMaster costs about
 * nine (channel open, exec, protocol start, file list, checksums, data, done phases,
 * stats, exit status; measured through a 30 ms link: 283 ms) and the stat after a push
 * one more.
 *
 * putSmall (push): the file's bytes travel base64-encoded in the script. On the server,
 * for each file, in this order: the folders above it inside the root are folders (N5);
 * the server's file is still the one the decision saw, kind, size and mtime to the
 * nanosecond (a compare-and-swap: one changed meanwhile is not replaced, it is looked at
 * again); the new bytes are written into `R/.lipsync/.put-*`, given the sent mode and
 * mtime (GNU touch, to the nanosecond); the server's version is kept in the push's trash
 * folder (S4) by a hard link (rsync's --backup renames it, leaving the path absent for a
 * moment); the new file is renamed into place; and
 * it is stat'ed, which stands for the stat after the push (W3).
 *
 * fetchSmall (pull): the script prints each file's stat, its bytes in base64 and its stat
 * again, checking the folders above it before and after (N5); a file whose two stats
 * differ, or that is not what the decision saw, is left to rsync. Here the bytes are
 * written into `L/.lipsync/.fetch-*`, given the server's mode and mtime, and renamed into
 * place once the local path is still what the decision saw, its version before kept in
 * the pull's trash folder by a hard link.
 *
 * Anything else (a folder above missing, a permission refused, a full disk, no GNU
 * tools, a failed script, a dropped connection) leaves the path to rsync, whose run
 * then says what is wrong in its own words; so these paths never report errors of
 * their own. LIPSYNC_SMALL_FILES=0 turns the whole path off (benchmarks compare both).
 */

import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { LocalStat, RemoteCapabilities, RemoteSpec, RemoteStat, SshOptions } from '../types.js';
import { NulFieldSplitter } from '../proc/split.js';
import { run } from '../proc/run.js';
import { META_DIR } from '../../../shared/layout.js';
import { LocalAncestors, SymlinkedParentError, linkInRoot, mkdirsInRoot, renameInRoot } from '../safe-fs.js';
import { findFieldsToStat } from './find-parse.js';
import { GatedOutput } from './gated-output.js';
import { shQuote } from './ssh.js';
import { META_CHECK, PRINT_STREAM_MARKER, requireRootScript, runScript } from './script.js';
import { heldForScript } from './lock.js';
import { sessionFor } from './session.js';
import { newTrashDir } from '../versions.js';
import type { TransferredItem } from './progress.js';

/** Largest file sent or fetched this way; larger ones go by rsync (its delta transfer pays there). */
export const SMALL_FILE_MAX = 64 * 1024;
/** At most this many bytes of files in one script (base64 makes 4/3 of it). */
export const SMALL_BATCH_BYTES = 256 * 1024;
/** At most this many files in one script. */
export const SMALL_BATCH_FILES = 64;
/** At most this many bytes of files read ahead by one peek (P6). */
const PEEK_BYTES = SMALL_BATCH_BYTES;
const SMALL_TIMEOUT_MS = 120_000;
/** A script holding its own lock (P5) ends well within the lock's TTL, so the lock is never broken as stale under it. */
const HELD_TIMEOUT_MS = 20_000;
/** The script's own exit status when the server lacks what it needs: everything goes by rsync. */
const EXIT_UNFIT = 20;

export interface SmallItem {
  path: string;
  /** The sending side's state when decided (a file). */
  from: LocalStat | RemoteStat;
  /** The receiving side's state when decided: a file, or null when absent. */
  to: LocalStat | RemoteStat | null;
}

export interface SmallOptions {
  localRoot: string;
  remote: RemoteSpec;
  ssh: SshOptions;
  caps: RemoteCapabilities;
  /** The trash folder of this transfer, relative to the receiving root (newTrashDir). */
  trashDir: string;
  bwLimitKBps?: number | undefined;
}

export interface SmallResult {
  /** With `hold`: the server lock was not free, so nothing was sent (every path is in `rest`). */
  locked?: boolean;
  /** Done: the receiving side's state now (push: the server's stat after; pull: the local lstat after). */
  done: Map<string, LocalStat | RemoteStat>;
  /** Not done because a side is no longer what the decision saw: to be looked at again. */
  changed: string[];
  /** Left to rsync. */
  rest: string[];
  items: TransferredItem[];
  literalBytes: number;
}

/** The options of the session path for a pair (a new trash folder), or null when it cannot use it. */
export function smallOptionsOf(
  c: Omit<SmallOptions, 'trashDir' | 'bwLimitKBps'> & { bwLimitKBps: number },
): SmallOptions | null {
  const o: SmallOptions = {
    localRoot: c.localRoot,
    remote: c.remote,
    ssh: c.ssh,
    caps: c.caps,
    trashDir: newTrashDir(),
    bwLimitKBps: c.bwLimitKBps || undefined,
  };
  return smallFilesUsable(o) ? o : null;
}

/** Whether the session path may be used at all for this pair. */
export function smallFilesUsable(o: Pick<SmallOptions, 'remote' | 'caps' | 'bwLimitKBps'>): boolean {
  if (process.env.LIPSYNC_SMALL_FILES === '0') return false;
  // A bandwidth limit is rsync's to keep; GNU find stands for the GNU tools the scripts use.
  return o.remote.kind === 'ssh' && o.caps.gnuFind && !(o.bwLimitKBps && o.bwLimitKBps > 0);
}

/**
 * The items that may go this way: files both sides (or absent on the receiving one), small,
 * in batch limits; none when more than `limit` could (smallLimit: rsync is then faster).
 */
export function pickSmall<T extends SmallItem>(items: T[], limit = SMALL_BATCH_FILES): { small: T[]; other: T[] } {
  const small: T[] = [];
  const other: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const fits =
      it.from.kind === 'file' &&
      it.from.size <= SMALL_FILE_MAX &&
      it.from.mtimeNs >= 0n &&
      (it.to === null || (it.to.kind === 'file' && it.to.mtimeNs >= 0n)) &&
      small.length < SMALL_BATCH_FILES &&
      bytes + it.from.size <= SMALL_BATCH_BYTES;
    if (fits) {
      small.push(it);
      bytes += it.from.size;
    } else other.push(it);
  }
  return small.length > limit ? { small: [], other: items } : { small, other };
}

/**
 * What a file costs each way, measured here (2 cores; latency.mjs and burst.mjs traces): the
 * scripts start 6-9 processes on the server per file, about 12 ms; an rsync run costs about
 * 60 ms of process starts and 9 round trips whatever it sends. So the session wins for few
 * files: on loopback up to 5, at 30 ms up to 25, at 150 ms the batch limit (64). Beyond
 * that a batch goes by rsync whole (a burst of 10,000 new files went 3.3x slower than
 * rsync when every batch of up to 64 went through the session).
 */
const SCRIPT_MS_PER_FILE = 12;
const RSYNC_FIXED_MS = 60;
const RSYNC_ROUND_TRIPS = 9;

/** How many files at most go through the session at once over this pair's link (see above). */
export function smallLimit(o: Pick<SmallOptions, 'remote' | 'ssh'>): number {
  const rtt = o.remote.kind === 'ssh' ? (sessionFor(o.remote, o.ssh).roundTripMs() ?? 0) : 0;
  const n = Math.floor((RSYNC_FIXED_MS + (RSYNC_ROUND_TRIPS - 1) * rtt) / SCRIPT_MS_PER_FILE);
  return Math.max(1, Math.min(SMALL_BATCH_FILES, n));
}

/** A state as the scripts' lipsync_now prints it: `f SIZE SECONDS NANOS`, or `-` when absent. */
export function stateWord(s: { kind: string; size: number; mtimeNs: bigint } | null): string {
  if (!s) return '-';
  const { sec, ns } = splitNs(s.mtimeNs);
  return `${s.kind === 'file' ? 'f' : s.kind === 'dir' ? 'd' : 'l'} ${s.size} ${sec} ${ns}`;
}

function splitNs(mtimeNs: bigint): { sec: string; ns: string } {
  return { sec: (mtimeNs / 1_000_000_000n).toString(), ns: (mtimeNs % 1_000_000_000n).toString().padStart(9, '0') };
}

/** `@SECONDS.NANOS`, the form GNU touch -d takes to the nanosecond (the server's, P1). */
function touchTime(mtimeNs: bigint): string {
  const { sec, ns } = splitNs(mtimeNs);
  return `@${sec}.${ns}`;
}

/** `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ`, which both GNU and BSD touch -d take to the nanosecond (this computer's). */
function isoTime(mtimeNs: bigint): string {
  const { sec, ns } = splitNs(mtimeNs);
  return `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${ns}Z`;
}

/**
 * Shell functions both scripts use (R and M set): lipsync_above REL succeeds when every
 * folder above REL inside R is a folder and not a symlink (N5); lipsync_now PATH prints
 * its stateWord (find's %T@ cut, never rounded, to 9 digits, as parseFindTime reads it).
 */
const SMALL_FUNCTIONS = `
lipsync_above() {
  q=$R; rest=$1
  while :; do
    case $rest in */*) ;; *) return 0 ;; esac
    q=$q/\${rest%%/*}; rest=\${rest#*/}
    if [ ! -d "$q" ] || [ -L "$q" ]; then return 1; fi
  done
}
lipsync_now() {
  if [ ! -e "$1" ] && [ ! -L "$1" ]; then echo -; return 0; fi
  t=$(find "$1" -maxdepth 0 -printf '%y %s %T@') || return 1
  case $t in *.*) f=\${t##*.}; h=\${t%.*} ;; *) f=; h=$t ;; esac
  f=\${f}000000000
  printf '%s %.9s\\n' "$h" "$f"
}`;

const STAT_FIELDS = `'%y\\0%s\\0%T@\\0%m\\0%i\\0%l\\0'`;

const PUT_FUNCTION = `
lipsync_put() {
  tmp=$M/.put-$N-$1; p=$R/$2
  # P5: the lock this script took must still be its own (not broken as stale meanwhile).
  if [ -n "$HOLD" ]; then
    c=; { read -r c || :; } <"$L/owner" 2>/dev/null
    if [ "$c" != "$O" ]; then rm -f "$tmp"; printf '%s\\0rest\\0' "$1"; return; fi
  fi
  if ! lipsync_above "$2"; then rm -f "$tmp"; printf '%s\\0rest\\0' "$1"; return; fi
  if ! now=$(lipsync_now "$p"); then rm -f "$tmp"; printf '%s\\0rest\\0' "$1"; return; fi
  if [ "$now" != "$3" ]; then rm -f "$tmp"; printf '%s\\0changed\\0' "$1"; return; fi
  if ! chmod "$4" "$tmp" || ! touch -m -d "$5" "$tmp"; then rm -f "$tmp"; printf '%s\\0rest\\0' "$1"; return; fi
  if [ "$3" != - ]; then
    case $2 in */*) d=$T/\${2%/*} ;; *) d=$T ;; esac
    # A hard link keeps the server's version in the trash while one rename replaces it:
    # the path is never absent, so no other client sees it deleted meanwhile.
    if ! mkdir -p "$d" || ! { ln -f "$p" "$T/$2" 2>/dev/null || cp -p "$p" "$T/$2"; }; then
      rm -f "$tmp"; printf '%s\\0rest\\0' "$1"; return
    fi
  fi
  if ! mv -f "$tmp" "$p"; then rm -f "$tmp"; printf '%s\\0rest\\0' "$1"; return; fi
  printf '%s\\0ok\\0' "$1"
  find "$p" -maxdepth 0 -printf ${STAT_FIELDS} 2>/dev/null || printf '?\\0?\\0?\\0?\\0?\\0?\\0'

}`;

const GET_FUNCTION = `
lipsync_get() {
  p=$R/$2
  if ! lipsync_above "$2" || [ ! -f "$p" ] || [ -L "$p" ]; then printf '%s\\0rest\\0' "$1"; return; fi
  a=$(lipsync_now "$p") || a=?
  printf '%s\\0data\\0%s\\0' "$1" "$a"
  find "$p" -maxdepth 0 -printf ${STAT_FIELDS} || printf '?\\0?\\0?\\0?\\0?\\0?\\0'
  base64 <"$p" || printf '!'
  printf '\\0'
  b=$(lipsync_now "$p") || b=?
  lipsync_above "$2" || b=moved
  printf '%s\\0' "$b"
}`;

/**
 * lipsync_peek I REL UNLESS: the path's state as statRemote gives it (P6), and the bytes of
 * a small file whose state is not UNLESS (its base: a file that did not change is never
 * read). `gone` when absent under folders that are folders; `up` when a folder above is a
 * symlink, a file or not searchable (statRemote then answers for the whole chunk, with N5's
 * folders above). At most PEEK_BYTES of bytes per script (LEFT).
 */
const PEEK_FUNCTION = `
lipsync_peek() {
  q=$R; rest=$2
  while :; do
    case $rest in */*) ;; *) break ;; esac
    q=$q/\${rest%%/*}; rest=\${rest#*/}
    if [ -L "$q" ] || { [ -e "$q" ] && [ ! -d "$q" ]; }; then printf '%s\\0up\\0' "$1"; return; fi
    if [ ! -e "$q" ]; then printf '%s\\0gone\\0' "$1"; return; fi
    # Not searchable: what lies below cannot be told absent (statRemote reports it denied).
    if [ ! -x "$q" ]; then printf '%s\\0up\\0' "$1"; return; fi
  done
  p=$R/$2
  if [ ! -x "\${p%/*}" ]; then printf '%s\\0up\\0' "$1"; return; fi
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then printf '%s\\0gone\\0' "$1"; return; fi
  if [ -L "$p" ] || [ ! -f "$p" ]; then
    printf '%s\\0stat\\0-\\0' "$1"
    find "$p" -maxdepth 0 -printf ${STAT_FIELDS} 2>/dev/null || printf '?\\0?\\0?\\0?\\0?\\0?\\0'
    printf '\\0-\\0'
    return
  fi
  # A file: one find for its state and stat (no name is printed, so the words split safely).
  t=$(find "$p" -maxdepth 0 -printf '%s %T@ %m %i' 2>/dev/null) || t=
  set -- "$1" "$2" "$3" $t
  if [ $# -ne 7 ]; then printf '%s\\0up\\0' "$1"; return; fi
  case $5 in *.*) f=\${5#*.}; h=\${5%.*} ;; *) f=; h=$5 ;; esac
  f=\${f}000000000; f=\${f%"\${f#?????????}"}
  a="f $4 $h $f"
  printf '%s\\0stat\\0%s\\0f\\0%s\\0%s\\0%s\\0%s\\0\\0' "$1" "$a" "$4" "$5" "$6" "$7"
  if [ "$a" != "$3" ] && [ "$4" -le ${SMALL_FILE_MAX} ] && [ "$4" -le "$LEFT" ]; then
    LEFT=$((LEFT - $4))
    base64 <"$p" 2>/dev/null || printf '!'
    t2=$(find "$p" -maxdepth 0 -printf '%s %T@' 2>/dev/null) || t2=
    b=$a
    if [ "$t2" != "$4 $5" ] || [ -L "$p" ] || ! lipsync_above "$2"; then b=moved; fi
    printf '\\0%s\\0' "$b"
  else
    printf '\\0%s\\0' "$a"
  fi
}`;

/** The script's preamble: the root checked, lipsync's folder there a folder, the GNU tools present. */
function preamble(root: string): string {
  return [
    requireRootScript(root),
    `M=$R/${META_DIR}`,
    `if [ ! -d "$M" ] || [ -L "$M" ]; then exit ${EXIT_UNFIT}; fi`,
    // N5 for lipsync's own folders (the trash, above all): one that is a symlink fails the
    // script, and the path goes where that is reported (rsync's run, under the lock).
    META_CHECK,
    `command -v base64 >/dev/null 2>&1 || exit ${EXIT_UNFIT}`,
    SMALL_FUNCTIONS,
  ].join('\n');
}

function base64Lines(buf: Buffer): string {
  const b = buf.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 76) lines.push(b.slice(i, i + 76));
  return lines.join('\n');
}

/**
 * Reads a local file whole, never through a symlink: its bytes; 'changed' when it is not (or
 * no longer) the decided state; 'rest' when it cannot be read (a permission refused: rsync's
 * run reports that as a warning for the path).
 */
function readDecided(
  localRoot: string,
  here: LocalAncestors,
  path: string,
  want: LocalStat | RemoteStat,
): Buffer | 'changed' | 'rest' {
  if (!here.reachable(path)) return 'changed';
  let fd: number;
  try {
    fd = openSync(join(localRoot, path), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR' ? 'changed' : 'rest';
  }
  try {
    const same = (): boolean => {
      const st = fstatSync(fd, { bigint: true });
      return st.isFile() && Number(st.size) === want.size && st.mtimeNs === want.mtimeNs;
    };
    if (!same()) return 'changed';
    const buf = Buffer.alloc(want.size);
    let at = 0;
    while (at < buf.length) {
      const n = readSync(fd, buf, at, buf.length - at, at);
      if (n === 0) return 'changed';
      at += n;
    }
    // Changed while read (rule W2 lets it be sent once its writes are done): not this time.
    return same() ? buf : 'changed';
  } finally {
    closeSync(fd);
  }
}

/** A stat record's six fields as a RemoteStat; null for placeholders or a kind sync does not handle. */
function statOrNull(f: string[]): RemoteStat | null {
  try {
    return findFieldsToStat(f);
  } catch {
    return null;
  }
}

/** Runs a small-files script; its NUL fields, or null when it did not run through (everything then goes by rsync). */
async function runFields(o: SmallOptions, script: string, timeoutMs = SMALL_TIMEOUT_MS): Promise<string[] | null> {
  const fields: string[] = [];
  const split = new NulFieldSplitter();
  const out = new GatedOutput((data) => {
    for (const f of split.push(data)) fields.push(f);
  });
  let res;
  try {
    res = await runScript(o.remote, o.ssh, script, { timeoutMs, onStdout: out.onStdout });
  } catch {
    return null;
  }
  if (res.code !== 0 || res.timedOut || out.error !== null || !out.passed) return null;
  return fields;
}

/** How far a script's answers were read: which were given, and whether one came out of step. */
interface Reading {
  answered: Set<number>;
  inStep: boolean;
}

/**
 * A script's answers, in order: `I\0STATUS\0`, then the fields that STATUS carries (`more`).
 * Stops at the first answer out of step (an index unknown or given before): `r` then says
 * which were given and that one was not.
 */
function* answers(
  fields: string[],
  count: number,
  more: (status: string) => number,
  r: Reading,
): Generator<{ i: number; status: string; f: string[] }> {
  for (let at = 0; at + 1 < fields.length;) {
    const i = Number(fields[at]);
    const status = fields[at + 1]!;
    if (!Number.isInteger(i) || i < 0 || i >= count || r.answered.has(i)) {
      r.inStep = false;
      return;
    }
    r.answered.add(i);
    const n = more(status);
    yield { i, status, f: fields.slice(at + 2, at + 2 + n) };
    at += 2 + n;
  }
}

function emptyResult(rest: string[]): SmallResult {
  return { done: new Map(), changed: [], rest, items: [], literalBytes: 0 };
}

/**
 * Sends small files in one script (see the header). `items[i].to` is the server's state when
 * decided. `hold`: the caller does not hold the server lock; the script takes it for itself
 * (P5: the compare-and-swap makes a decision taken without the lock hold at the write).
 */
export async function putSmall(
  o: SmallOptions,
  items: SmallItem[],
  hold?: { owner: string; ttlMs: number },
): Promise<SmallResult> {
  const result = emptyResult([]);
  const here = new LocalAncestors(o.localRoot);
  const nonce = randomBytes(6).toString('hex');
  const parts: string[] = [
    preamble(o.remote.path),
    `N=${nonce}`,
    `T=$R/${shQuote(o.trashDir)}`,
    PUT_FUNCTION,
    PRINT_STREAM_MARKER,
    ...(hold ? [heldForScript(hold.owner, hold.ttlMs, o.remote.path), 'HOLD=1'] : ['HOLD=']),
    // Temp files of a put cut short (a dropped connection, a kill), under the lock: only put
    // scripts make them, and by ctime (touch sets a temp's mtime back to its file's).
    `find "$M" -maxdepth 1 -name '.put-*' -cmin +60 -exec rm -f {} + 2>/dev/null`,
  ];
  const sent: { item: SmallItem; size: number }[] = [];
  for (const it of items) {
    const data = readDecided(o.localRoot, here, it.path, it.from);
    if (data === 'changed' || data === 'rest') {
      result[data].push(it.path);
      continue;
    }
    const i = sent.length;
    sent.push({ item: it, size: data.length });
    const mode = `0${(it.from.mode & 0o777).toString(8)}`;
    parts.push(
      `if base64 -d >"$M/.put-$N-${i}" <<'LIPSYNC_EOF'`,
      base64Lines(data),
      'LIPSYNC_EOF',
      `then lipsync_put ${i} ${shQuote(it.path)} ${shQuote(stateWord(it.to))} ${mode} ${touchTime(it.from.mtimeNs)}`,
      `else rm -f "$M/.put-$N-${i}"; printf '${i}\\0rest\\0'; fi`,
    );
  }
  if (!sent.length) return result;
  const fields = await runFields(o, parts.join('\n'), hold ? HELD_TIMEOUT_MS : SMALL_TIMEOUT_MS);
  if (fields === null) {
    result.rest.push(...sent.map((s) => s.item.path));
    return result;
  }
  if (fields[0] === 'locked') {
    result.locked = true;
    result.rest.push(...sent.map((s) => s.item.path));
    return result;
  }
  const r: Reading = { answered: new Set(), inStep: true };
  // `ok`: six stat fields follow (placeholders when the file was gone again at once).
  for (const { i, status, f } of answers(fields, sent.length, (st) => (st === 'ok' ? 6 : 0), r)) {
    const s = sent[i]!;
    if (status === 'ok') {
      const stat = statOrNull(f);
      if (!stat || stat.kind !== 'file') {
        result.rest.push(s.item.path);
        continue;
      }
      result.done.set(s.item.path, stat);
      result.items.push({
        path: s.item.path,
        itemize: s.item.to ? '<f.st......' : '<f+++++++++',
        size: s.size,
        deleted: false,
      });
      result.literalBytes += s.size;
    } else if (status === 'changed') result.changed.push(s.item.path);
    else result.rest.push(s.item.path);
  }
  // A script cut short: what it did not answer for goes by rsync (its quick check sends no data for what landed).
  for (let i = 0; i < sent.length; i++) if (!r.answered.has(i)) result.rest.push(sent[i]!.item.path);
  return result;
}

/** Fetches small files in one script (see the header). `items[i].from` is the server's state when decided. */
export async function fetchSmall(o: SmallOptions, items: SmallItem[]): Promise<SmallResult> {
  const result = emptyResult([]);
  if (!items.length) return result;
  const script = [
    preamble(o.remote.path),
    GET_FUNCTION,
    PRINT_STREAM_MARKER,
    ...items.map((it, i) => `lipsync_get ${i} ${shQuote(it.path)}`),
  ].join('\n');
  const fields = await runFields(o, script);
  if (fields === null) return emptyResult(items.map((it) => it.path));
  const got: { item: SmallItem; data: Buffer; stat: RemoteStat }[] = [];
  const r: Reading = { answered: new Set(), inStep: true };
  // `data`: the state, six stat fields, the bytes in base64, the state again.
  for (const { i, status, f } of answers(fields, items.length, (st) => (st === 'data' ? 9 : 0), r)) {
    const it = items[i]!;
    if (status !== 'data') {
      result.rest.push(it.path);
      continue;
    }
    const before = f[0];
    const stat = statOrNull(f.slice(1, 7));
    const text = f[7] ?? '';
    const after = f[8];
    const data = Buffer.from(text.replace(/\s+/g, ''), 'base64');
    const whole = !text.includes('!') && data.length === it.from.size;
    if (before !== stateWord(it.from) || after !== before || !whole || !stat) result.rest.push(it.path);
    else got.push({ item: it, data, stat });
  }
  for (let i = 0; i < items.length; i++) if (!r.answered.has(i)) result.rest.push(items[i]!.path);
  if (got.length) await placeFetched(o, got, result);
  return result;
}

export interface PeekResult {
  /** The server's state of each path, as statRemote gives it (null: absent). */
  stats: (RemoteStat | null)[];
  /** The bytes of small files that changed, read between two equal states (P6). */
  data: Map<string, Buffer>;
}

/**
 * P6: the server's state of a few paths and, in the same round trip, the bytes of the small
 * files among them whose state is not `unless[i]` (a stateWord: their base). Null when a
 * folder above a path is a symlink, a file or not searchable, or the script failed: the
 * caller then asks statRemote, which says what lies above each path (N5).
 */
export async function peekSmall(o: SmallOptions, paths: string[], unless: string[]): Promise<PeekResult | null> {
  const script = [
    preamble(o.remote.path),
    PEEK_FUNCTION,
    `LEFT=${PEEK_BYTES}`,
    PRINT_STREAM_MARKER,
    ...paths.map((p, i) => `lipsync_peek ${i} ${shQuote(p)} ${shQuote(unless[i] ?? '-')}`),
  ].join('\n');
  const fields = await runFields(o, script);
  if (fields === null) return null;
  const stats: (RemoteStat | null)[] = new Array<RemoteStat | null>(paths.length).fill(null);
  const data = new Map<string, Buffer>();
  const r: Reading = { answered: new Set(), inStep: true };
  // `stat`: the state, six stat fields, the bytes in base64 (or nothing), the state again.
  for (const { i, status, f } of answers(fields, paths.length, (st) => (st === 'stat' ? 9 : 0), r)) {
    const path = paths[i]!;
    if (status === 'gone') continue;
    if (status !== 'stat') return null;
    const before = f[0] ?? '';
    const sf = f.slice(1, 7);
    const text = f[7] ?? '';
    const after = f[8];
    if (sf.length < 6 || sf.includes('?') || after === undefined) return null;
    const stat = findFieldsToStat(sf);
    stats[i] = stat;
    if (!text || !stat || stat.kind !== 'file' || after !== before || before !== stateWord(stat)) continue;
    const bytes = Buffer.from(text.replace(/\s+/g, ''), 'base64');
    if (!text.includes('!') && bytes.length === stat.size) data.set(path, bytes);
  }
  return r.inStep && r.answered.size === paths.length ? { stats, data } : null;
}

/** P6: files whose bytes a peek read (the item's `from` is the state they were read under), put in place here as fetchSmall does. */
export async function placeSmall(o: SmallOptions, got: { item: SmallItem; data: Buffer }[]): Promise<SmallResult> {
  const result = emptyResult([]);
  if (!got.length) return result;
  await placeFetched(
    o,
    got.map((g) => ({ ...g, stat: g.item.from as RemoteStat })),
    result,
  );
  return result;
}

/** A hard link of `path` at `trash` (a copy where the file system has none), never through a symlink. */
function keepInTrash(root: string, path: string, trash: string): void {
  try {
    linkInRoot(root, path, trash, true);
  } catch (e) {
    if (e instanceof SymlinkedParentError) throw e;
    mkdirsInRoot(root, dirname(trash));
    copyFileSync(join(root, path), join(root, trash), constants.COPYFILE_EXCL);
  }
}

/** Temp files of a fetch cut short (a kill -9, a crash) more than an hour ago. */
function removeStaleFetches(meta: string): void {
  const old = Date.now() - 3600_000;
  for (const name of readdirSync(meta)) {
    if (!name.startsWith('.fetch-')) continue;
    const st = lstatSync(join(meta, name), { throwIfNoEntry: false });
    // By ctime: touch sets a temp's mtime back to its file's.
    if (st?.isFile() && st.ctimeMs < old) rmSync(join(meta, name), { force: true });
  }
}

/** Writes what was fetched into temp files here, then into place (see the header). */
async function placeFetched(
  o: SmallOptions,
  got: { item: SmallItem; data: Buffer; stat: RemoteStat }[],
  result: SmallResult,
): Promise<void> {
  const nonce = randomBytes(6).toString('hex');
  const temps: string[] = [];
  try {
    // Not recursive: a local root that is gone (an unmounted disk) is never made again (S1).
    try {
      mkdirSync(join(o.localRoot, META_DIR));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // N5 for this computer's own folder: one that is a symlink (or a file) is never written through.
    if (!lstatSync(join(o.localRoot, META_DIR)).isDirectory()) throw new Error('.lipsync is not a folder here');
    removeStaleFetches(join(o.localRoot, META_DIR));
    const touchArgs: string[] = [];
    for (let i = 0; i < got.length; i++) {
      const g = got[i]!;
      const tmp = `${META_DIR}/.fetch-${nonce}-${i}`;
      // Listed before it is written: a write cut short (a full disk) leaves a file to remove.
      temps.push(tmp);
      writeFileSync(join(o.localRoot, tmp), g.data, { flag: 'wx', mode: 0o600 });
      chmodSync(join(o.localRoot, tmp), g.stat.mode & 0o777);
      touchArgs.push(isoTime(g.item.from.mtimeNs), join(o.localRoot, tmp));
    }
    // Node sets times through a double (about 240 ns steps today): GNU touch keeps the nanoseconds.
    const r = await run('/bin/sh', [
      '-c',
      'while [ $# -gt 1 ]; do touch -m -d "$1" -- "$2" || exit 1; shift 2; done',
      'sh',
      ...touchArgs,
    ]);
    if (r.code !== 0) {
      result.rest.push(...got.map((g) => g.item.path));
      return;
    }
    const here = new LocalAncestors(o.localRoot);
    for (let i = 0; i < got.length; i++) {
      const g = got[i]!;
      const now = here.lstat(g.item.path);
      const want = g.item.to;
      const same = !now
        ? !want
        : !!want && now.kind === want.kind && now.size === want.size && now.mtimeNs === want.mtimeNs;
      if (!same || !here.reachable(g.item.path)) {
        // Absent as decided, below a folder that is missing here (not a symlink, not a file):
        // rsync makes the folders above it, as it does without this path (R14, D2).
        if (same && !now && here.blockedBy(g.item.path) === null) result.rest.push(g.item.path);
        else result.changed.push(g.item.path);
        continue;
      }
      try {
        // The version here stays in the trash by a hard link (a copy where links fail), so
        // the path is never absent while one rename replaces it.
        if (now) keepInTrash(o.localRoot, g.item.path, `${o.trashDir}/${g.item.path}`);
        renameInRoot(o.localRoot, temps[i]!, g.item.path);
      } catch {
        result.rest.push(g.item.path);
        continue;
      }
      temps[i] = '';
      const placed = here.lstat(g.item.path);
      if (!placed) {
        result.changed.push(g.item.path);
        continue;
      }
      result.done.set(g.item.path, placed);
      result.items.push({
        path: g.item.path,
        itemize: now ? '>f.st......' : '>f+++++++++',
        size: g.data.length,
        deleted: false,
      });
      result.literalBytes += g.data.length;
    }
  } catch {
    for (const g of got)
      if (!result.done.has(g.item.path) && !result.changed.includes(g.item.path)) result.rest.push(g.item.path);
  } finally {
    for (const t of temps) if (t) rmSync(join(o.localRoot, t), { force: true });
  }
}
