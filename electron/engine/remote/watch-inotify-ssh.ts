/**
 * The remote change feed's inotify mode on an ssh remote (see watch.ts for the
 * interface): ONE long-lived `ssh … /bin/sh -s` session whose script runs
 * walkwatch (watch/walkwatch.ts) with the server's perl where it can, else
 * `inotifywait -m -r` (same arguments and NUL-separated format as the local
 * watcher, parsed by the shared InotifyRecordParser) in the background and
 * `wait`s for it. A second background job reads the session's stdin, which
 * we keep open as a pipe and never write to after the script: when it hits
 * EOF (we closed it in stop(), or our ssh died, even by SIGKILL, and sshd
 * closed the session) it kills inotifywait, so nothing lingers on the
 * server (ssh without a tty forwards no signals). When the stream drops, it
 * reconnects with exponential backoff (1 s … backoffMaxMs) and then asks for
 * a rescan ('reconnected'): events were missed meanwhile.
 *
 * Shared mode (the default where the server can run walkwatch): the session
 * follows the folder's shared watcher's journal instead (remote/journal.ts),
 * so ten clients cost the server one watcher. The follower prints the same
 * records plus POS records; a reconnection resumes at the last position read
 * and asks for no rescan (the follower sends Q_OVERFLOW when that position is
 * gone). Where the journal cannot be used (EXIT_JOURNAL_FAILED: no perl, a
 * journal this server user cannot write, a watcher that failed to start) this
 * client says why once and watches on its own, as above.
 */

import type { ChildProcess } from 'node:child_process';
import type { RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError } from '../errors.js';
import { spawnChild, stopProcess } from '../proc/run.js';
import { shQuote } from './ssh.js';
import { inotifywaitArgs } from '../watch/inotifywait.js';
import { InotifyRecordParser, interpretRecord } from '../watch/records.js';
import { isIgnoredPath } from '../excludes.js';
import { classifyLimitText } from '../watch/limits.js';
import {
  SinceCollector,
  sinceArg,
  syscallCaseScript,
  takeWalkRecords,
  walkwatchEnabled,
  WALKWATCH_PL,
} from '../watch/walkwatch.js';
import type { DirtySnapshot } from '../dirty.js';
import { absPath } from './paths.js';
import {
  EXIT_NO_INOTIFYWAIT,
  PRINT_STREAM_MARKER,
  StreamGate,
  requireRootScript,
  scriptCommand,
  scriptFailure,
} from './script.js';
import { Backoff, DEFAULT_BACKOFF_MAX_MS, STABLE_CONNECTION_MS, toChange } from './watch-inotify.js';
import { pollMarkerPath } from './watch-marker.js';
import {
  EXIT_JOURNAL_FAILED,
  EXIT_WATCHER_GONE,
  journalSessionScript,
  journalTuning,
  sharedWatcherEnabled,
} from './journal.js';
import type { RemoteChange, RemoteWatcher, RemoteWatchHandlers, RemoteWatchOptions } from './watch.js';

const STOP_GRACE_MS = 3_000;
const STDERR_TAIL = 8 * 1024;

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
  /** Following the shared watcher's journal (else watching alone). */
  private shared: boolean;
  /** The last journal position read (`gen:offset`): a reconnection resumes there. */
  private pos: string | null = null;
  private resumedThere: boolean | undefined = undefined;

  constructor(
    private readonly remote: Extract<RemoteSpec, { kind: 'ssh' }>,
    private readonly ssh: SshOptions,
    private readonly root: string,
    private readonly handlers: RemoteWatchHandlers,
    private readonly opts: RemoteWatchOptions,
  ) {
    this.backoff = new Backoff(opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
    this.shared = walkwatchEnabled() && sharedWatcherEnabled() && opts.clientId !== undefined;
    if (this.shared && opts.resumeAt !== undefined) this.pos = opts.resumeAt;
  }

  /** With opts.resumeAt: whether the first session resumed there (J8); undefined until it began. */
  resumed(): boolean | undefined {
    return this.resumedThere;
  }

  position(): string | null {
    return this.shared && !this.stopping ? this.pos : null;
  }

  /** Whether this client follows the server folder's shared watcher (diagnostics, tests). */
  get sharedWatcher(): boolean {
    return this.shared;
  }

  /** The script of one session: following the journal, or watching alone. */
  private sessionScript(sinceMarker: string | undefined): string {
    if (this.shared) {
      return journalSessionScript(this.root, {
        clientId: this.opts.clientId!,
        pos: this.pos,
        ...(sinceMarker !== undefined ? { sinceMarker: absPath(this.root, pollMarkerPath(sinceMarker)) } : {}),
        tuning: journalTuning(),
      });
    }
    const walk = walkwatchEnabled()
      ? sinceMarker !== undefined
        ? { sinceMarker: pollMarkerPath(sinceMarker) }
        : {}
      : null;
    return inotifySessionScript(this.root, walk);
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
    if (await this.closedWithin(STOP_GRACE_MS)) return;
    await stopProcess(child);
    // With a ControlMaster, the master holds the session's pipes while the server side lives:
    // the child's 'close' waits for them. Ours end here.
    if (await this.closedWithin(STOP_GRACE_MS)) return;
    for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy();
    await this.closed;
  }

  /** Whether the session's process has closed, or closes within `ms`. */
  private async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
    clearTimeout(timer);
    return closed;
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
      const shared = this.shared;
      // Resuming in the journal: nothing was missed (the follower says so when it was).
      const resumed = shared && this.pos !== null;
      child.stdin!.on('error', () => undefined);
      // The script, and no end(): the open pipe keeps the remote watcher (or follower) alive.
      child.stdin!.write(this.sessionScript(sinceMarker));

      const markEstablished = (): void => {
        established = true;
        connectedAt = Date.now();
        if (this.stopping) return;
        this.state(true);
        if (isReconnect && !resumed) this.handlers.onRescanNeeded('reconnected');
        resolve();
      };
      const gate = new StreamGate();
      const parser = new InotifyRecordParser();
      child.stdout!.on('data', (chunk: Buffer) => {
        const data = gate.push(chunk);
        if (data === null) return;
        let records = parser.push(data);
        if (shared) records = this.takePositions(records);
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
        if (shared && code === EXIT_JOURNAL_FAILED) {
          // The shared watcher cannot serve this client: say why once, and watch alone.
          this.shared = false;
          this.handlers.onNotice?.(
            `${stderrTail.trim().split('\n').pop() ?? 'The shared watcher could not be used'}: this client watches ${this.root} on its own (one more watcher on the server).`,
          );
          if (!established && !isReconnect) {
            this.connect(false).then(resolve, reject);
            return;
          }
          if (!established) resolve();
          this.scheduleReconnect(0);
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

  private scheduleReconnect(delayMs?: number): void {
    if (this.stopping || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopping) return;
      this.connect(true).catch(() => undefined);
    }, delayMs ?? this.backoff.take());
  }

  /** Takes the follower's POS records out of a batch; the last one is where to resume. */
  private takePositions(records: ReturnType<InotifyRecordParser['push']>): ReturnType<InotifyRecordParser['push']> {
    let last: string | null = null;
    const rest = records.filter((r) => {
      if (r.events[0] !== 'POS') return true;
      // The first position after READY is where the follower began: the one asked for when
      // it could resume there (J8); the journal's end (after a listing) when it could not.
      if (this.resumedThere === undefined && this.opts.resumeAt !== undefined)
        this.resumedThere = r.path === this.opts.resumeAt;
      last = r.path;
      return false;
    });
    // Every record before it is in this batch or an earlier one, all handed on before the next.
    if (last !== null) this.pos = last;
    return rest;
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
    if (code === EXIT_WATCHER_GONE) {
      // The follower says why when it could not start one (a full disk): keep its words.
      const why = stderr
        .trim()
        .split('\n')
        .pop()
        ?.replace(/^lipsync: /, '');
      return new LipsyncError(
        'watcher-died',
        `The shared watcher of ${this.root} on ${this.remote.host} stopped; starting it again${why ? ` (${why})` : ''}.`,
      );
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
