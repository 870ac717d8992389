/**
 * The remote change feed: what changed ON THE SERVER, without rescanning it.
 * One interface, two modes:
 *
 * inotify (the server has inotifywait):
 *  - ssh remote: ONE long-lived `ssh … /bin/sh -s` session whose script runs
 *    walkwatch (watch/walkwatch.ts) with the server's perl where it can, else
 *    `inotifywait -m -r` (same arguments and NUL-separated format as the local
 *    watcher, parsed by the shared InotifyRecordParser) in the background and
 *    `wait`s for it. A second background job reads the session's stdin, which
 *    we keep open as a pipe and never write to after the script: when it hits
 *    EOF (we closed it in stop(), or our ssh died, even by SIGKILL, and sshd
 *    closed the session) it kills inotifywait, so nothing lingers on the
 *    server (ssh without a tty forwards no signals). When the stream drops, it
 *    reconnects with exponential backoff (1 s … backoffMaxMs) and then asks for
 *    a rescan ('reconnected'): events were missed meanwhile.
 *  - local remote (a mounted disk): the local watcher (watch/watcher.ts) on the
 *    remote path, restarted with the same backoff if it dies.
 *
 * poll (no inotifywait): every pollIntervalMs, ONE command lists what changed
 * since the last poll. With GNU find: a marker file
 * `<root>/.lipsync/poll-marker-<clientId>` (one per client, so several
 * clients can poll one server); each poll creates a NEW marker (dated 1 s in
 * the past when GNU `touch -d` is there, so a change in the same clock tick
 * is reported twice rather than never), runs
 * `find ROOT \( -path ROOT/.lipsync -prune \) -o -cnewer MARKER -printf …`
 * (ctime: rsync sets mtimes back, but can't set ctimes), then renames the new
 * marker over the old one, so nothing changed during the find is missed.
 * Every path whose ctime changed is reported as 'modify'; a folder whose
 * entries changed (a deletion, a rename) is reported too: the caller compares
 * that folder's listing to find deletions. The first poll (no marker yet)
 * asks for a rescan ('first poll'). Without GNU find, every poll asks for a
 * rescan ('no GNU find on the server: full listing'), which is slow on big
 * trees. Stale markers of clients that are gone stay in .lipsync/ (a few bytes).
 * Local remotes run the same script with the local /bin/sh.
 *
 * Changes are hints, like local watch events: the caller stats the paths.
 */

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Excluder, RemoteCapabilities, RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError } from '../errors.js';
import { spawnChild, stopProcess } from '../proc/run.js';
import { shQuote } from './ssh.js';
import { inotifywaitArgs } from '../watch/inotifywait.js';
import { InotifyRecordParser, interpretRecord } from '../watch/records.js';
import { isIgnoredPath } from '../excludes.js';
import { META_DIR, isMetaPath, pollMarkerFile } from '../../../shared/layout.js';
import { classifyLimitText } from '../watch/limits.js';
import {
  findPerl,
  SinceCollector,
  sinceArg,
  syscallCaseScript,
  takeWalkRecords,
  walkwatchEnabled,
  WALKWATCH_PL,
} from '../watch/walkwatch.js';
import type { DirtySnapshot } from '../dirty.js';
import { createWatcher, type Watcher, type WatchEvent, type WatchFailure } from '../watch/watcher.js';
import { FindListParser } from './find-parse.js';
import { absPath, globEscape, normalizeRoot } from './paths.js';
import {
  EXIT_META_FAILED,
  EXIT_NO_INOTIFYWAIT,
  PRINT_STREAM_MARKER,
  StreamGate,
  requireRootScript,
  runScript,
  scriptCommand,
  scriptFailure,
} from './script.js';

export interface RemoteChange {
  path: string;
  isDir: boolean;
  /** As WatchEventKind (watch/watcher.ts): 'write' is a file written to and not closed yet. */
  kind: 'create' | 'modify' | 'write' | 'delete' | 'move-from' | 'move-to' | 'attrib';
}

export interface RemoteWatchHandlers {
  onChanges(changes: RemoteChange[]): void;
  /** Events were (or may have been) missed: overflow, reconnect after a gap, first poll, no GNU find. */
  onRescanNeeded(reason: string): void;
  onState(s: { mode: 'inotify' | 'poll'; connected: boolean; error?: string }): void;
}

export interface RemoteWatcher {
  readonly mode: 'inotify' | 'poll';
  /**
   * inotify: resolves once the watches are established; poll: after the first
   * poll. Rejects with a LipsyncError when that first attempt fails (the
   * watcher is then stopped); later failures are reported with onState and
   * retried.
   */
  start(): Promise<void>;
  /** Stops watching; resolves when the session (and the remote inotifywait) is gone. */
  stop(): Promise<void>;
  /** poll: polls now (after a poll in progress, if any); never rejects (failures go to onState). inotify: no-op. */
  pollNow(): Promise<void>;
  /**
   * After start, with opts.sinceMarkerId, where the server ran walkwatch: what changed
   * there since the marker (null: incomplete, compare everything); else undefined.
   */
  changedSince?(): DirtySnapshot | null | undefined;
}

export interface RemoteWatchOptions {
  /** Poll mode: ms between polls. Default 30000. */
  pollIntervalMs?: number;
  excluder?: Excluder;
  /** Longest wait between reconnection attempts (inotify mode). Default 60000. */
  backoffMaxMs?: number;
  /**
   * Poll mode: names this client's marker on the server (letters, digits, '-', '_'; at most 64).
   * Pass a stable id persisted by the caller; default a random one (the first poll then rescans).
   */
  clientId?: string;
  /**
   * inotify mode: the first watch walk also lists what changed since this marker
   * (`.lipsync/poll-marker-ID`, see changedSince()), where walkwatch can run.
   */
  sinceMarkerId?: string;
}

export const DEFAULT_POLL_INTERVAL_MS = 30_000;
export const DEFAULT_BACKOFF_MAX_MS = 60_000;
const INITIAL_BACKOFF_MS = 1_000;
/** A connection that lasted this long resets the backoff. */
const STABLE_CONNECTION_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const STDERR_TAIL = 8 * 1024;
const POLL_BATCH = 1_000;
const POLL_TIMEOUT_MS = 10 * 60_000;
/** Poll script exit code: there was no marker yet (one was created). */
const EXIT_FIRST_POLL = 10;

export function createRemoteWatcher(
  remote: RemoteSpec,
  ssh: SshOptions,
  root: string,
  caps: RemoteCapabilities,
  handlers: RemoteWatchHandlers,
  opts: RemoteWatchOptions = {},
): RemoteWatcher {
  const r = normalizeRoot(root);
  if (caps.inotifywait) {
    return remote.kind === 'ssh'
      ? new SshInotifyWatcher(remote, ssh, r, handlers, opts)
      : new LocalInotifyWatcher(r, handlers, opts);
  }
  return new PollWatcher(remote, ssh, r, caps, handlers, opts);
}

/** 1 s, 2 s, 4 s … capped. */
class Backoff {
  private next = INITIAL_BACKOFF_MS;
  constructor(private readonly max: number) {}
  take(): number {
    const d = Math.min(this.next, this.max);
    this.next = Math.min(this.next * 2, this.max);
    return d;
  }
  reset(): void {
    this.next = INITIAL_BACKOFF_MS;
  }
}

function toChange(e: WatchEvent): RemoteChange {
  return { path: e.path, isDir: e.isDir, kind: e.kind };
}

// ---------------------------------------------------------------------------
// inotify over ssh

/**
 * The session script: see the module comment. Root: absolute, normalised.
 * Where perl can run walkwatch (watch/walkwatch.ts) it watches instead of
 * inotifywait (one walk lists what changed since `sinceMarker`, a path under
 * the root's .lipsync, and puts the watches in place); inotifywait is still
 * required, so the choice of inotify or poll mode stays as the probe saw it.
 */
export function inotifySessionScript(root: string, walk: { sinceMarker?: string } | null = null): string {
  const args = inotifywaitArgs(root).map(shQuote).join(' ');
  const watcher = `inotifywait ${args} </dev/null 3<&- &`;
  const since = sinceArg(walk?.sinceMarker !== undefined ? { markerFile: absPath(root, walk.sinceMarker) } : null);
  const start =
    walk === null
      ? watcher
      : `${syscallCaseScript()}
if [ -n "$nr" ] && command -v perl >/dev/null 2>&1; then
perl -e ${shQuote(WALKWATCH_PL)} -- ${shQuote(root)} ${shQuote(since)} $nr </dev/null 3<&- &
else
${watcher}
fi`;
  // `exec 3<&0` runs before the group is parsed; inside it stdin is /dev/null
  // (nothing can swallow the script), fd 3 is the session's stdin.
  return `exec 3<&0
{
LC_ALL=C; export LC_ALL; unset CDPATH
${requireRootScript(root)}
command -v inotifywait >/dev/null 2>&1 || { echo "lipsync: inotifywait: not found" >&2; exit ${EXIT_NO_INOTIFYWAIT}; }
${PRINT_STREAM_MARKER}
${start}
w=$!
( while read -r _; do :; done; kill $w 2>/dev/null ) <&3 >/dev/null 2>&1 &
r=$!
exec 3<&-
wait $w
rc=$?
kill $r 2>/dev/null
exit $rc
} </dev/null
`;
}

export class SshInotifyWatcher implements RemoteWatcher {
  readonly mode = 'inotify' as const;
  private child: ChildProcess | null = null;
  private closed: Promise<void> = Promise.resolve();
  private started = false;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private sinceResult: DirtySnapshot | null | undefined = undefined;

  constructor(
    private readonly remote: Extract<RemoteSpec, { kind: 'ssh' }>,
    private readonly ssh: SshOptions,
    private readonly root: string,
    private readonly handlers: RemoteWatchHandlers,
    private readonly opts: RemoteWatchOptions,
  ) {
    this.backoff = new Backoff(opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
  }

  /** The local ssh process id while a session runs (diagnostics, tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('remote watcher already started');
    this.started = true;
    this.stopping = false;
    try {
      await this.connect(false);
    } catch (e) {
      this.stopping = true;
      throw e;
    }
  }

  pollNow(): Promise<void> {
    return Promise.resolve();
  }

  changedSince(): DirtySnapshot | null | undefined {
    return this.sinceResult;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const child = this.child;
    if (!child) return this.closed;
    // EOF on the session's stdin: the remote side kills inotifywait and exits.
    child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_GRACE_MS))),
    ]);
    clearTimeout(timer);
    if (!ended) {
      await stopProcess(child);
      await this.closed;
    }
  }

  private state(connected: boolean, error?: string): void {
    this.handlers.onState(error === undefined ? { mode: 'inotify', connected } : { mode: 'inotify', connected, error });
  }

  /** One session; resolves once its watches are established, rejects if it ends before. */
  private connect(isReconnect: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const [cmd, args] = scriptCommand(this.remote, this.ssh);
      const child = spawnChild(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      this.child = child;
      let markClosed!: () => void;
      this.closed = new Promise<void>((r) => (markClosed = r));
      let established = false;
      let connectedAt = 0;
      let stderrTail = '';
      let stderrLine = '';
      let spawnError: NodeJS.ErrnoException | null = null;

      // The first session's walk lists what changed since the marker (walkwatch only).
      const sinceMarker = isReconnect ? undefined : this.opts.sinceMarkerId;
      const collector = sinceMarker !== undefined ? new SinceCollector(this.opts.excluder) : null;
      const walk = walkwatchEnabled()
        ? sinceMarker !== undefined
          ? { sinceMarker: pollMarkerPath(sinceMarker) }
          : {}
        : null;
      child.stdin!.on('error', () => undefined);
      // The script, and no end(): the open pipe keeps the remote inotifywait alive.
      child.stdin!.write(inotifySessionScript(this.root, walk));

      const markEstablished = (): void => {
        established = true;
        connectedAt = Date.now();
        if (this.stopping) return;
        this.state(true);
        if (isReconnect) this.handlers.onRescanNeeded('reconnected');
        resolve();
      };
      const gate = new StreamGate();
      const parser = new InotifyRecordParser();
      child.stdout!.on('data', (chunk: Buffer) => {
        const data = gate.push(chunk);
        if (data === null) return;
        let records = parser.push(data);
        if (!established) {
          const walked = takeWalkRecords(records, this.root, collector);
          records = walked.rest;
          if (walked.ready) {
            if (collector) this.sinceResult = collector.result();
            markEstablished();
          }
        }
        this.onRecords(records);
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        stderrTail = (stderrTail + text).slice(-STDERR_TAIL);
        const lines = (stderrLine + text).split('\n');
        stderrLine = (lines.pop() ?? '').slice(-STDERR_TAIL);
        for (const line of lines) {
          if (!established && line.startsWith('Watches established')) {
            markEstablished();
          } else if (established && !this.stopping && classifyLimitText(line) === 'watch-limit') {
            // New folders on the server can't be watched: say so, and rescan to catch what they hold.
            this.state(true, `The server's inotify watch limit is reached: ${line.trim()}`);
            this.handlers.onRescanNeeded('watch limit reached on the server');
          }
        }
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (child.pid === undefined) spawnError = e;
      });
      child.on('close', (code, signal) => {
        if (this.child === child) this.child = null;
        markClosed();
        if (this.stopping) {
          if (established) resolve();
          else reject(new LipsyncError('cancelled', 'The remote watcher was stopped.'));
          return;
        }
        const err = this.failure(established, code, signal, stderrTail, spawnError);
        if (!established) {
          if (!isReconnect) {
            reject(err);
            return;
          }
          resolve(); // nobody waits for a reconnection attempt: report and retry
        }
        if (established && Date.now() - connectedAt >= STABLE_CONNECTION_MS) this.backoff.reset();
        this.state(false, err.message);
        this.scheduleReconnect();
      });
    });
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopping) return;
      this.connect(true).catch(() => undefined);
    }, this.backoff.take());
  }

  private failure(
    established: boolean,
    code: number | null,
    signal: NodeJS.Signals | null,
    stderr: string,
    spawnError: NodeJS.ErrnoException | null,
  ): LipsyncError {
    if (spawnError) {
      return new LipsyncError('unknown', `Could not start ssh: ${spawnError.code ?? spawnError.message}.`, {
        fix: 'Install OpenSSH (the ssh client), e.g. `sudo apt install openssh-client`.',
        detail: String(spawnError),
      });
    }
    const limit = classifyLimitText(stderr);
    if (limit) {
      return new LipsyncError(
        'watch-limit',
        `The server's inotify ${limit === 'watch-limit' ? 'watch' : 'instance'} limit is too low to watch ${this.root}.`,
        {
          fix: `On the server, raise it: sudo sysctl ${limit === 'watch-limit' ? 'fs.inotify.max_user_watches=1048576' : 'fs.inotify.max_user_instances=1024'}.`,
          detail: stderr.slice(-4000),
        },
      );
    }
    if (code === 255 || (!established && code !== 0 && code !== null && code !== 1)) {
      return scriptFailure(this.remote, this.ssh, { code, signal, stderr, timedOut: false }, this.root);
    }
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const detail = stderr.slice(-4000);
    return new LipsyncError(
      'watcher-died',
      established
        ? `The connection watching ${this.root} on ${this.remote.host} was lost (${how}).`
        : `Watching ${this.root} on ${this.remote.host} failed (${how}).`,
      detail ? { detail } : {},
    );
  }

  private onRecords(records: ReturnType<InotifyRecordParser['push']>): void {
    if (this.stopping || records.length === 0) return;
    let batch: RemoteChange[] = [];
    const flush = (): void => {
      if (batch.length > 0) {
        const b = batch;
        batch = [];
        this.handlers.onChanges(b);
      }
    };
    for (const rec of records) {
      const m = interpretRecord(rec, this.root);
      if (m.type === 'event') {
        if (!isIgnoredPath(m.event.path, m.event.isDir, this.opts.excluder)) batch.push(toChange(m.event));
      } else if (m.type === 'overflow') {
        flush();
        this.handlers.onRescanNeeded('overflow');
      } else if (m.type === 'root-gone') {
        flush();
        const what = m.reason === 'UNMOUNT' ? 'was unmounted' : m.reason === 'MOVE_SELF' ? 'was moved' : 'was deleted';
        this.state(true, `The remote folder ${this.root} ${what}.`);
        this.handlers.onRescanNeeded(`root ${what}`);
      }
    }
    flush();
  }
}

// ---------------------------------------------------------------------------
// inotify on a local remote

function watchError(f: WatchFailure): LipsyncError {
  const kind = f.kind === 'watch-limit' || f.kind === 'instance-limit' ? 'watch-limit' : 'watcher-died';
  const extra: { fix?: string; detail?: string } = {};
  if (f.fix !== undefined) extra.fix = f.fix;
  if (f.detail !== undefined) extra.detail = f.detail;
  return new LipsyncError(kind, f.message, extra);
}

export class LocalInotifyWatcher implements RemoteWatcher {
  readonly mode = 'inotify' as const;
  private watcher: Watcher | null = null;
  private started = false;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  /** Bumped on every (re)start: events and errors of an older watcher are ignored. */
  private generation = 0;
  private startedAt = 0;
  private sinceResult: DirtySnapshot | null | undefined = undefined;

  constructor(
    private readonly root: string,
    private readonly handlers: RemoteWatchHandlers,
    private readonly opts: RemoteWatchOptions,
  ) {
    this.backoff = new Backoff(opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('remote watcher already started');
    this.started = true;
    this.stopping = false;
    try {
      await this.open(false);
    } catch (e) {
      this.stopping = true;
      throw e;
    }
  }

  pollNow(): Promise<void> {
    return Promise.resolve();
  }

  changedSince(): DirtySnapshot | null | undefined {
    return this.sinceResult;
  }

  private async open(isRestart: boolean): Promise<void> {
    const gen = ++this.generation;
    const w = await createWatcher(
      this.root,
      {
        onEvents: (events) => {
          if (gen === this.generation && !this.stopping) this.handlers.onChanges(events.map(toChange));
        },
        onOverflow: () => {
          if (gen === this.generation && !this.stopping) this.handlers.onRescanNeeded('overflow');
        },
        onError: (f) => {
          if (gen !== this.generation || this.stopping) return;
          this.watcher = null;
          if (Date.now() - this.startedAt >= STABLE_CONNECTION_MS) this.backoff.reset();
          this.handlers.onState({ mode: 'inotify', connected: false, error: f.message });
          this.scheduleRestart();
        },
      },
      {
        backend: findPerl() !== null ? 'walkwatch' : 'inotifywait',
        ...(this.opts.excluder ? { excluder: this.opts.excluder } : {}),
        ...(!isRestart && this.opts.sinceMarkerId !== undefined
          ? { since: { markerFile: absPath(this.root, pollMarkerPath(this.opts.sinceMarkerId)) } }
          : {}),
      },
    );
    try {
      await w.start();
      if (!isRestart) this.sinceResult = w.changedSince?.();
    } catch (e) {
      const f = (e as { failure?: WatchFailure }).failure;
      throw f ? watchError(f) : e;
    }
    if (this.stopping) {
      await w.stop();
      return;
    }
    this.watcher = w;
    this.startedAt = Date.now();
    this.handlers.onState({ mode: 'inotify', connected: true });
    if (isRestart) this.handlers.onRescanNeeded('reconnected');
  }

  private scheduleRestart(): void {
    if (this.stopping || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopping) return;
      this.open(true).catch((e: unknown) => {
        if (this.stopping) return;
        this.handlers.onState({ mode: 'inotify', connected: false, error: (e as Error).message });
        this.scheduleRestart();
      });
    }, this.backoff.take());
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const w = this.watcher;
    this.watcher = null;
    if (w) await w.stop();
  }
}

// ---------------------------------------------------------------------------
// poll

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
  const gate = new StreamGate();
  const parser = new FindListParser('');
  let batch: RemoteChange[] = [];
  let parseError: unknown = null;
  const flush = (): void => {
    if (batch.length > 0) {
      const b = batch;
      batch = [];
      onChanges(b);
    }
  };
  const res = await runScript(remote, ssh, pollScript(r, markerId), {
    timeoutMs: POLL_TIMEOUT_MS,
    onStdout: (chunk) => {
      if (parseError !== null) return;
      const data = gate.push(chunk);
      if (data === null) return;
      try {
        for (const e of parser.push(data)) {
          const isDir = e.kind === 'dir';
          if (isMetaPath(e.path)) continue;
          if (isIgnoredPath(e.path, isDir, excluder)) continue;
          batch.push({ path: e.path, isDir, kind: 'modify' });
          if (batch.length >= POLL_BATCH) flush();
        }
      } catch (err) {
        parseError = err;
      }
    },
  });
  flush();
  if (res.code === EXIT_FIRST_POLL) return { result: 'no-marker' };
  if (res.code === 1 && gate.passed) return { result: 'partial', detail: res.stderr.trim().split('\n').pop() ?? '' };
  if (res.code !== 0 || res.timedOut) throw scriptFailure(remote, ssh, res, r);
  if (parseError !== null || !gate.passed || parser.incomplete()) {
    throw new LipsyncError('unknown', `Unexpected answer while looking for changes in ${r}.`, {
      detail: `${String(parseError ?? 'incomplete output')}\n${res.stderr.slice(-2000)}`,
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

export class PollWatcher implements RemoteWatcher {
  readonly mode = 'poll' as const;
  private readonly interval: number;
  private readonly clientId: string;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private running = false;
  private lastState: string | null = null;

  constructor(
    private readonly remote: RemoteSpec,
    private readonly ssh: SshOptions,
    private readonly root: string,
    private readonly caps: RemoteCapabilities,
    private readonly handlers: RemoteWatchHandlers,
    private readonly opts: RemoteWatchOptions,
  ) {
    this.interval = Math.max(100, opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    this.clientId = opts.clientId ?? randomBytes(8).toString('hex');
    pollMarkerPath(this.clientId); // validates
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('remote watcher already started');
    this.running = true;
    const first = this.chain.then(() => this.poll());
    this.chain = first.catch(() => undefined);
    try {
      await first;
    } catch (e) {
      this.running = false;
      throw e;
    }
    this.schedule();
  }

  pollNow(): Promise<void> {
    const p = this.chain.then(() => this.pollReported());
    this.chain = p;
    return p;
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.chain;
  }

  private schedule(): void {
    if (!this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.running) return;
      const p = this.chain.then(() => this.pollReported());
      this.chain = p;
      void p.then(() => this.schedule());
    }, this.interval);
  }

  private state(connected: boolean, error?: string): void {
    const key = `${connected}:${error ?? ''}`;
    if (key === this.lastState) return;
    this.lastState = key;
    this.handlers.onState(error === undefined ? { mode: 'poll', connected } : { mode: 'poll', connected, error });
  }

  /** A poll whose failure is reported with onState rather than thrown. */
  private async pollReported(): Promise<void> {
    if (!this.running) return;
    try {
      await this.poll();
    } catch (e) {
      this.state(false, (e as Error).message);
    }
  }

  private async poll(): Promise<void> {
    if (!this.caps.gnuFind) {
      await this.checkRoot();
      this.state(true);
      this.handlers.onRescanNeeded('no GNU find on the server: full listing');
      return;
    }
    const r = await listChangedSince(this.remote, this.ssh, this.root, this.clientId, this.opts.excluder, (b) =>
      this.handlers.onChanges(b),
    );
    if (r.result === 'no-marker') {
      this.state(true);
      this.handlers.onRescanNeeded('first poll');
      return;
    }
    if (r.result === 'partial') {
      // find reported what it could read; the marker was kept, so the next poll covers this window again.
      this.state(true, `Some folders in ${this.root} could not be read: ${r.detail}`);
      return;
    }
    this.state(true);
  }

  private async checkRoot(): Promise<void> {
    if (this.remote.kind === 'local') {
      let isDir: boolean;
      try {
        isDir = (await stat(this.root)).isDirectory();
      } catch {
        throw new LipsyncError('remote-missing', `The folder ${this.root} does not exist.`, {
          fix: 'Check the path (is the disk mounted?), or create the folder.',
        });
      }
      if (!isDir) throw new LipsyncError('remote-not-dir', `${this.root} is not a folder.`);
      return;
    }
    const res = await runScript(this.remote, this.ssh, requireRootScript(this.root), { timeoutMs: 120_000 });
    if (res.code !== 0 || res.timedOut) throw scriptFailure(this.remote, this.ssh, res, this.root);
  }
}
