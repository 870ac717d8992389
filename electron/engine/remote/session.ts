/**
 * A kept-open script session per server: one `ssh … /bin/sh -s` that runs the script
 * layer's scripts one after another, so each costs one round trip instead of a new ssh
 * channel's three to four (channel open, exec request, exit status and close; measured
 * through a 30 ms link: `ssh true` over the ControlMaster 94–128 ms, a script through
 * the session ~31 ms). That is most of what one change paid before its rsync started.
 *
 * The contract is runScript's (script.ts), unchanged: a script's stdout, its exit code,
 * its stderr, a timeout or an abort, and ssh's own exit code 255 when the connection
 * fails. How it is kept:
 *  - Each script runs in a subshell `( … ) </dev/null`, so its `exit`, variables,
 *    functions and traps end with it, and nothing it runs can read the next script
 *    from the session's stdin. Its stderr goes to a file of the session's own (created
 *    with noclobber, mode 600), sent back after it.
 *  - After each script the shell prints `\nLIPSYNC-END-<nonce> <exit code> <stderr
 *    bytes>\n` and that stderr: the nonce is new for every script and never sent
 *    anywhere else, so no file name or file content a script prints can end it early.
 *  - One script at a time. A script asked for while the session is busy, starting, or
 *    broken runs over a new ssh channel as before (runScript falls back): never queued
 *    behind a long listing, never later than before.
 *  - A timeout or an abort ends the session (the script cannot be stopped alone); the
 *    next script starts a new one. A session that fails to start (the server down, a
 *    key refused) is not tried again for a while: the fallback reports the error in
 *    ssh's own words, and an outage does not pay two connection timeouts per script.
 *  - An idle session ends after SESSION_IDLE_MS; sessions are ended with the pair's
 *    ssh connection (closeSessions) and, as every child, at shutdown (stopAllChildren).
 *    A script still running when close() ends its session ends then too, as stopped.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { spawnChild, stopProcess, type RunResult } from '../proc/run.js';
import { childSpan } from '../trace.js';
import { REMOTE_SH, sshArgs } from './ssh.js';
import type { RemoteSpec, SshOptions } from '../types.js';

type SshRemote = Extract<RemoteSpec, { kind: 'ssh' }>;

/** An idle session ends after this long (the ControlMaster's own persistence is 60 s). */
export const SESSION_IDLE_MS = 120_000;
/** After a session failed to start, scripts go over new channels for this long. */
const BROKEN_FOR_MS = 60_000;
/** Longest wait for a new session's first answer before the script goes over a new channel. */
const START_TIMEOUT_MS = 30_000;
/** stderr of the session's ssh kept for a failure (ssh's own messages). */
const SSH_STDERR_TAIL = 8 * 1024;

export interface SessionRunOptions {
  onStdout?: (chunk: Buffer) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
  maxBuffer: number;
}

interface Request {
  endMarker: Buffer;
  opts: SessionRunOptions;
  /** Bytes after the end marker: the "<code> <stderr bytes>\n" line, then stderr. */
  trailer: Buffer | null;
  out: Buffer[];
  outBytes: number;
  held: Buffer;
  resolve: (r: RunResult) => void;
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
  span: (() => void) | null;
  sentAt: number;
  /** Printed by the session shell itself before the script's subshell starts (see roundTripMs). */
  ackMarker: Buffer;
  acked: boolean;
}

const nonce = (): string => randomBytes(12).toString('hex');

/** The session shell's set-up: the C locale, its stderr file, the first answer. */
function startScript(ready: string): string {
  return `LC_ALL=C; export LC_ALL; unset CDPATH
lipsync_e="\${TMPDIR:-/tmp}/lipsync-session.$$"
rm -f -- "$lipsync_e"
(umask 077; set -C; : > "$lipsync_e") || exit 1
trap 'rm -f -- "$lipsync_e"' EXIT
trap 'exit 1' HUP INT TERM PIPE
printf '\\nLIPSYNC-END-${ready} 0 0\\n'
`;
}

/** One script, framed for the session (see the module comment). */
function requestScript(script: string, end: string): string {
  return `printf 'LIPSYNC-ACK-${end}\\n'
(
${script}
) </dev/null 2>"$lipsync_e"; printf '\\nLIPSYNC-END-${end} %s ' "$?"; wc -c < "$lipsync_e"; cat -- "$lipsync_e"
`;
}

export class ScriptSession {
  private child: ChildProcess | null = null;
  private starting: Promise<boolean> | null = null;
  private current: Request | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private sshStderr = '';
  private brokenUntil = 0;
  /**
   * The shortest time from sending a script to the shell's acknowledgement of it (printed
   * by the session shell before the script's subshell starts): a round trip of the link.
   * What `auto` settings read the link by (see roundTripMs).
   */
  private fastestMs = Infinity;
  /**
   * The fastest time of the sessions before this one. A new session (after an idle end or
   * a lost connection: the computer may have moved to another network) measures afresh;
   * until its first script ends, the last session's figure stands.
   */
  private previousFastestMs = Infinity;
  private idle?: NodeJS.Timeout;

  constructor(
    private readonly remote: SshRemote,
    private readonly ssh: SshOptions,
  ) {}

  /**
   * Runs `script` (already wrapped as runScript sends it) in the session; null when the
   * session cannot take it now (busy, broken, failed to start): the caller runs it over
   * a new channel then.
   */
  async run(script: string, opts: SessionRunOptions): Promise<RunResult | null> {
    if (this.current || Date.now() < this.brokenUntil || opts.signal?.aborted) return null;
    const end = nonce();
    const req: Request = {
      endMarker: Buffer.from(`\nLIPSYNC-END-${end} `),
      opts,
      trailer: null,
      out: [],
      outBytes: 0,
      held: Buffer.alloc(0),
      resolve: () => undefined,
      span: null,
      sentAt: 0,
      ackMarker: Buffer.from(`LIPSYNC-ACK-${end}\n`),
      acked: false,
    };
    this.current = req; // taken before any await: a second caller falls back
    if (!(await this.ensureStarted())) {
      this.current = null;
      return null;
    }
    clearTimeout(this.idle);
    this.hold(true);
    req.span = childSpan('ssh session');
    req.sentAt = performance.now();
    return new Promise<RunResult>((resolve) => {
      req.resolve = resolve;
      if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
        req.timer = setTimeout(() => this.abandon(req, true), opts.timeoutMs);
      }
      if (opts.signal) {
        req.onAbort = () => this.abandon(req, false);
        opts.signal.addEventListener('abort', req.onAbort, { once: true });
      }
      this.child!.stdin!.write(requestScript(script, end));
    });
  }

  /** The link's round trip as this session saw it (its fastest acknowledgement), once a script has run. */
  roundTripMs(): number | undefined {
    const ms = Number.isFinite(this.fastestMs) ? this.fastestMs : this.previousFastestMs;
    return Number.isFinite(ms) ? ms : undefined;
  }

  /**
   * Ends the session (its shell exits at the end of its input; the ssh is stopped). A script
   * still running in it ends now as stopped, as one over its own channel does when its ssh is
   * stopped: left waiting, its timeout's timer kept a one-shot command alive after its work.
   */
  close(): void {
    clearTimeout(this.idle);
    const c = this.child;
    this.child = null;
    this.starting = null;
    if (this.current)
      this.finish(this.current, { code: null, signal: 'SIGTERM', stderr: 'lipsync: the ssh session was closed' });
    if (c) {
      c.stdin?.end();
      void stopProcess(c, 2000);
    }
  }

  private ensureStarted(): Promise<boolean> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null && this.starting)
      return this.starting;
    const ready = nonce();
    const marker = Buffer.from(`\nLIPSYNC-END-${ready} 0 0\n`);
    const child = spawnChild('ssh', sshArgs(this.remote, this.ssh, REMOTE_SH), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    if (Number.isFinite(this.fastestMs)) this.previousFastestMs = this.fastestMs;
    this.fastestMs = Infinity;
    this.buf = Buffer.alloc(0);
    this.sshStderr = '';
    child.stdin!.on('error', () => undefined);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => {
      if (this.child !== child) return;
      this.sshStderr = (this.sshStderr + t).slice(-SSH_STDERR_TAIL);
    });
    this.starting = new Promise<boolean>((resolve) => {
      let started = false;
      const fail = () => {
        if (started) return;
        started = true;
        clearTimeout(timer);
        this.brokenUntil = Date.now() + BROKEN_FOR_MS;
        if (this.child === child) this.close();
        resolve(false);
      };
      const timer = setTimeout(fail, START_TIMEOUT_MS);
      child.on('error', fail);
      child.once('close', () => {
        const active = this.child === child;
        fail();
        if (!active || this.child !== child) return;
        this.child = null;
        this.starting = null;
        this.connectionLost();
      });
      child.stdout!.on('data', (chunk: Buffer) => {
        if (this.child !== child) return; // a session already ended: its late output is not read
        if (!started) {
          // Login noise (a chatty .bashrc) comes before the first answer: dropped.
          this.buf = Buffer.concat([this.buf, chunk]);
          const at = this.buf.indexOf(marker);
          if (at === -1) return;
          started = true;
          clearTimeout(timer);
          this.buf = Buffer.alloc(0);
          resolve(true);
          return;
        }
        this.onData(chunk);
      });
      child.stdin!.write(startScript(ready));
    });
    return this.starting;
  }

  private onData(chunk: Buffer): void {
    const req = this.current;
    if (!req) return; // output after an abandoned script: the session is being stopped
    if (req.trailer) {
      req.trailer = Buffer.concat([req.trailer, chunk]);
      this.tryFinish(req);
      return;
    }
    let data = req.held.length ? Buffer.concat([req.held, chunk]) : chunk;
    if (!req.acked) {
      // The shell's own answer, before the script's subshell is even started: a round
      // trip of the link and no more (a subshell's start costs 5-15 ms on a busy machine).
      const ack = data.indexOf(req.ackMarker);
      if (ack === -1) {
        req.held = Buffer.from(data);
        return;
      }
      req.acked = true;
      this.fastestMs = Math.min(this.fastestMs, performance.now() - req.sentAt);
      data = data.subarray(ack + req.ackMarker.length);
      req.held = Buffer.alloc(0);
    }
    const at = data.indexOf(req.endMarker);
    if (at === -1) {
      // Hold back what could be the start of the marker, cut in two.
      const keep = Math.min(data.length, req.endMarker.length - 1);
      this.emit(req, data.subarray(0, data.length - keep));
      req.held = Buffer.from(data.subarray(data.length - keep));
      return;
    }
    this.emit(req, data.subarray(0, at));
    req.held = Buffer.alloc(0);
    req.trailer = Buffer.from(data.subarray(at + req.endMarker.length));
    this.tryFinish(req);
  }

  private emit(req: Request, b: Buffer): void {
    if (!b.length) return;
    req.opts.onStdout?.(b);
    req.out.push(b);
    req.outBytes += b.length;
    while (req.outBytes > req.opts.maxBuffer && req.out.length > 1) req.outBytes -= req.out.shift()!.length;
  }

  private tryFinish(req: Request): void {
    const t = req.trailer!;
    const nl = t.indexOf(0x0a);
    if (nl === -1) return;
    const m = /^(\d+) +(\d+)$/.exec(t.subarray(0, nl).toString('latin1').trim());
    if (!m) {
      // Not our trailer: the session is out of step; this script's result is unknown.
      this.finish(req, { code: 255, signal: null, stderr: 'lipsync: the ssh session answered out of step' });
      this.close();
      return;
    }
    const errBytes = Number(m[2]);
    if (t.length - nl - 1 < errBytes) return;
    const stderr = t.subarray(nl + 1, nl + 1 + errBytes).toString('utf8');
    this.finish(req, { code: Number(m[1]), signal: null, stderr });
    this.idle = setTimeout(() => this.close(), SESSION_IDLE_MS);
    this.idle.unref();
  }

  private finish(
    req: Request,
    r: { code: number | null; signal: NodeJS.Signals | null; stderr: string },
    timedOut = false,
  ) {
    if (this.current !== req) return;
    this.current = null;
    this.hold(false);
    clearTimeout(req.timer);
    if (req.onAbort) req.opts.signal?.removeEventListener('abort', req.onAbort);
    req.span?.();
    let stdout = Buffer.concat(req.out).toString('utf8');
    if (req.outBytes > req.opts.maxBuffer) stdout = stdout.slice(-req.opts.maxBuffer);
    req.resolve({ ...r, stdout, timedOut });
  }

  /**
   * An idle session does not keep this process alive (a one-shot CLI command exits as
   * before); one running a script does.
   */
  private hold(on: boolean): void {
    const c = this.child;
    if (!c) return;
    for (const h of [c, c.stdin, c.stdout, c.stderr] as ({ ref?: () => void; unref?: () => void } | null)[])
      if (on) h?.ref?.();
      else h?.unref?.();
  }

  /** A timeout or an abort: the script cannot be stopped alone, so the session ends. */
  private abandon(req: Request, timedOut: boolean): void {
    this.finish(req, { code: null, signal: 'SIGTERM', stderr: '' }, timedOut);
    this.close();
  }

  /** The ssh ended under a script: ssh's own failure (255) and its words, as a new channel reports it. */
  private connectionLost(): void {
    const req = this.current;
    if (req) this.finish(req, { code: 255, signal: null, stderr: this.sshStderr || 'lipsync: the ssh session ended' });
  }
}

const sessions = new Map<string, ScriptSession>();

/** The session of this server and these ssh options (one per distinct ssh command line). */
export function sessionFor(remote: SshRemote, ssh: SshOptions): ScriptSession {
  const key = JSON.stringify(sshArgs(remote, ssh));
  let s = sessions.get(key);
  if (!s) sessions.set(key, (s = new ScriptSession(remote, ssh)));
  return s;
}

/** Ends the sessions to this server (with these options); the next script starts a new one. */
export function closeSessions(remote: SshRemote, ssh: SshOptions): void {
  const key = JSON.stringify(sshArgs(remote, ssh));
  sessions.get(key)?.close();
  sessions.delete(key);
}
