/**
 * Engine errors: one class, and ONE table that turns a failed ssh or rsync run
 * (exit code + stderr) into an ErrorKind with a sentence a person understands
 * and, when we know it, what to do about it. In the style of GitHub Desktop's
 * git error table: the first matching rule wins, so specific rules come first.
 */

import { ERROR_KINDS, type ErrorInfo, type ErrorKind } from '../../shared/errors.js';

export class LipsyncError extends Error {
  kind: ErrorKind;
  fix?: string;
  files?: string[];
  detail?: string;

  constructor(
    kind: ErrorKind,
    message: string,
    extra: { fix?: string; files?: string[]; detail?: string; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'LipsyncError';
    this.kind = kind;
    if (extra.fix !== undefined) this.fix = extra.fix;
    if (extra.files !== undefined) this.files = extra.files;
    if (extra.detail !== undefined) this.detail = extra.detail;
  }

  /** Rebuilds an error from its serialised form (e.g. one that crossed the API). */
  static fromInfo(info: ErrorInfo): LipsyncError {
    const extra: { fix?: string; files?: string[]; detail?: string } = {};
    if (info.fix !== undefined) extra.fix = info.fix;
    if (info.files !== undefined) extra.files = [...info.files];
    if (info.detail !== undefined) extra.detail = info.detail;
    return new LipsyncError(isErrorKind(info.kind) ? info.kind : 'unknown', info.message, extra);
  }

  toInfo(): ErrorInfo {
    const info: ErrorInfo = { kind: this.kind, message: this.message };
    if (this.fix !== undefined) info.fix = this.fix;
    if (this.files !== undefined) info.files = [...this.files];
    if (this.detail !== undefined) info.detail = this.detail;
    return info;
  }
}

function isErrorKind(x: unknown): x is ErrorKind {
  return typeof x === 'string' && (ERROR_KINDS as readonly string[]).includes(x);
}

/** Any thrown value as the serialisable ErrorInfo (unknown things become kind 'unknown'). */
export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof LipsyncError) return e.toInfo();
  if (typeof e === 'object' && e !== null) {
    const o = e as Record<string, unknown>;
    // Already an ErrorInfo (e.g. one that crossed the API and came back).
    if (isErrorKind(o.kind) && typeof o.message === 'string' && !(e instanceof Error)) {
      const info: ErrorInfo = { kind: o.kind, message: o.message };
      if (typeof o.fix === 'string') info.fix = o.fix;
      if (Array.isArray(o.files)) info.files = o.files.filter((f): f is string => typeof f === 'string');
      if (typeof o.detail === 'string') info.detail = o.detail;
      return info;
    }
  }
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    const info: ErrorInfo = { kind: 'unknown', message: e.message || 'Unexpected error.' };
    const detail = [code, e.stack].filter(Boolean).join(': ');
    if (detail) info.detail = detail;
    return info;
  }
  return { kind: 'unknown', message: typeof e === 'string' && e ? e : 'Unexpected error.' };
}

// ---------------------------------------------------------------------------
// rsync name escapes

/**
 * rsync prints names with control characters (and, outside a UTF-8 locale or
 * without -8, high-bit bytes) escaped as `\#ooo` (3 octal digits); a literal
 * backslash followed by `#ddd` is itself escaped as `\#134`. This undoes it,
 * byte-exact: escaped bytes are reassembled before UTF-8 decoding.
 */
export function unescapeRsyncName(s: string): string {
  if (!s.includes('\\#')) return s;
  const src = Buffer.from(s, 'utf8');
  const out = Buffer.alloc(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === 0x5c && src[i + 1] === 0x23 && i + 4 < src.length) {
      const d = src.subarray(i + 2, i + 5);
      if (d.length === 3 && d.every((c) => c >= 0x30 && c <= 0x37)) {
        const v = ((d[0] as number) - 0x30) * 64 + ((d[1] as number) - 0x30) * 8 + ((d[2] as number) - 0x30);
        if (v <= 0xff) {
          out[n++] = v;
          i += 4;
          continue;
        }
      }
    }
    out[n++] = b;
  }
  return out.subarray(0, n).toString('utf8');
}

// ---------------------------------------------------------------------------
// File names in rsync's stderr

/** Per-file rsync messages: which side usually prints them, and the name. */
const FILE_LINE_PATTERNS: { side: 'sender' | 'receiver'; vanished?: true; re: RegExp }[] = [
  { side: 'sender', vanished: true, re: /\bfile has vanished: "(.*)"$/ },
  { side: 'sender', re: /send_files failed to open "(.*)": / },
  { side: 'sender', re: /\blink_stat "(.*)" failed: / },
  { side: 'sender', re: /\breadlink_stat\("(.*)"\) failed: / },
  { side: 'sender', re: /\bopendir "(.*)" failed: / },
  { side: 'sender', re: /\bread errors mapping "(.*)": / },
  { side: 'receiver', re: /\bmkstemp "(.*)" failed: / },
  { side: 'receiver', re: /\bwrite failed on "(.*)": / },
  { side: 'receiver', re: /\brecv_generator: (?:mkdir|failed to stat) "(.*)"(?: failed)?: / },
  { side: 'receiver', re: /\brename "(?:.*)" -> "(.*)": / },
  // rsync >= 3.2 prints the name unquoted: `delete_file: unlink(old.txt) failed: ...`.
  { side: 'receiver', re: /\bdelete_file: \w+\("?(.*?)"?\) failed: / },
  {
    side: 'receiver',
    re: /\b(?:rmdir|unlink|mkdir|chmod|lchmod|utime|set_times|symlink|readlink|copy_file|open|write) "(.*)" failed: /,
  },
  { side: 'receiver', re: /\bcannot delete non-empty directory: (.*)$/ },
];

/**
 * The names on per-file rsync error lines (unescaped, deduplicated, in order).
 * `side` keeps only lines from that side (an explicit "[sender]" / "[receiver]"
 * / "[generator]" tag wins over the message's usual side); `onlyVanished`
 * keeps only "file has vanished" lines.
 */
export function rsyncErrorFiles(stderr: string, side?: 'sender' | 'receiver', onlyVanished = false): string[] {
  const files: string[] = [];
  const seen = new Set<string>();
  for (const rawLine of stderr.split(/\r?\n/)) {
    const line = rawLine.trimEnd();
    for (const p of FILE_LINE_PATTERNS) {
      if (onlyVanished && !p.vanished) continue;
      const m = p.re.exec(line);
      if (!m || m[1] === undefined) continue;
      const tag = /^rsync: \[(\w+)\]/.exec(line)?.[1]?.toLowerCase();
      const lineSide = tag === undefined ? p.side : tag === 'sender' ? 'sender' : 'receiver';
      if (side && lineSide !== side) break;
      const name = unescapeRsyncName(m[1]);
      if (!seen.has(name)) {
        seen.add(name);
        files.push(name);
      }
      break;
    }
  }
  return files;
}

// ---------------------------------------------------------------------------
// The table

export type FailingTool = 'ssh' | 'rsync';

export interface FailureContext {
  host?: string;
  path?: string;
  user?: string;
  port?: number;
  identityFile?: string;
}

interface RuleInput extends FailureContext {
  tool: FailingTool;
  code: number | null;
  stderr: string;
  match: RegExpExecArray | null;
  lastLine: string;
}

interface Rule {
  /** Limit to one tool; both when absent. */
  tool?: FailingTool;
  /** Exit codes that match (null = killed by a signal). With `re` too, both must match. */
  codes?: (number | null)[];
  re?: RegExp;
  kind: ErrorKind;
  message: (i: RuleInput) => string;
  fix?: (i: RuleInput) => string | undefined;
  files?: (i: RuleInput) => string[] | undefined;
}

const who = (i: RuleInput) => (i.host ? `${i.user ? `${i.user}@` : ''}${i.host}` : 'the server');
const sshCmd = (i: RuleInput) =>
  `ssh ${i.port ? `-p ${i.port} ` : ''}${i.identityFile ? `-i "${i.identityFile}" ` : ''}${i.user ? `${i.user}@` : ''}${i.host ?? 'HOST'}`;
/** The port ssh tried (it names it: "connect to host H port P"), else the configured one, else 22. */
const sshPort = (i: RuleInput) => /\bport (\d+)\b/.exec(i.stderr)?.[1] ?? String(i.port ?? 22);
const knownHostsName = (i: RuleInput) =>
  i.host ? (i.port && i.port !== 22 ? `[${i.host}]:${i.port}` : i.host) : 'HOST';

export const FAILURE_TABLE: readonly Rule[] = [
  {
    // Must come before host-key-unknown: this message also ends with "Host key verification failed".
    re: /REMOTE HOST IDENTIFICATION HAS CHANGED/,
    kind: 'host-key-changed',
    message: (i) =>
      `The identity (host key) of ${who(i)} changed since the last connection; lipsync stopped because someone could be intercepting the connection.`,
    fix: (i) => {
      const fp = /(SHA256:[A-Za-z0-9+/=]+)/.exec(i.stderr)?.[1];
      const remove = /ssh-keygen -f "(.*)" -R "(.*)"/.exec(i.stderr);
      const cmd = remove ? `ssh-keygen -f "${remove[1]}" -R "${remove[2]}"` : `ssh-keygen -R "${knownHostsName(i)}"`;
      return (
        `Ask the server's administrator (or check on the server's console with \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`) ` +
        `whether its key fingerprint is ${fp ?? 'the one ssh reports'}. Only if it matches (for example after a reinstall), ` +
        `remove the old key with \`${cmd}\`, then connect once with \`${sshCmd(i)}\` to accept the new key. If it does not match, do not connect.`
      );
    },
  },
  {
    re: /Host key verification failed|No \S+ host key is known for/,
    kind: 'host-key-unknown',
    message: (i) => `The identity (host key) of ${who(i)} is not known yet, so ssh refused to connect without asking.`,
    fix: (i) =>
      `Connect once in a terminal with \`${sshCmd(i)}\`, check that the fingerprint it shows is your server's, and answer "yes"; then try again.`,
  },
  {
    re: /Permission denied \((?:publickey|password|keyboard-interactive|hostbased|gssapi)|Too many authentication failures/,
    kind: 'auth-failed',
    message: (i) =>
      `${who(i)} refused the login: ${i.identityFile ? `the key ${i.identityFile}` : 'none of your ssh keys'} is accepted there.`,
    fix: (i) => {
      const key = i.identityFile ?? '~/.ssh/id_ed25519';
      const tried = i.identityFile
        ? `lipsync offered only the key ${i.identityFile}.`
        : 'lipsync offered your default ssh keys (~/.ssh/id_ed25519, ~/.ssh/id_rsa..., or the IdentityFile from your ssh config).';
      return (
        `${tried} Install its public key on the server with \`ssh-copy-id -i ${key}.pub ${i.port && i.port !== 22 ? `-p ${i.port} ` : ''}${i.user ? `${i.user}@` : ''}${i.host ?? 'HOST'}\`` +
        ` (create a key first with \`ssh-keygen -t ed25519\` if you have none), or set the pair's identity file to a key the server accepts.`
      );
    },
  },
  {
    re: /Could not resolve hostname|Name or service not known|nodename nor servname|Connection refused|No route to host|Connection timed out|Operation timed out|timed out during banner exchange|Connection to \S+ port \d+ timed out|Network is unreachable|kex_exchange_identification|Connection closed by \S+ port \d+|Connection reset by/,
    kind: 'host-unreachable',
    message: (i) => {
      const line = /ssh: (.*)|(kex_exchange_identification: .*)|(Connection (?:timed out|closed|reset|to ).*)/.exec(
        i.stderr,
      );
      const why = line ? (line[1] ?? line[2] ?? line[3] ?? '').trim() : i.lastLine;
      return `Could not reach ${who(i)}${why ? ` (${why})` : ''}.`;
    },
    fix: (i) =>
      /resolve hostname|not known|servname/.test(i.stderr)
        ? 'Check the host name for typos, or use the name you use with ssh in a terminal.'
        : `Check that the server is on and connected, that sshd listens on port ${sshPort(i)}, and that a firewall or VPN does not block it. lipsync reconnects by itself within seconds once it answers.`,
  },
  {
    re: /No space left on device|Disk quota exceeded/,
    kind: 'disk-full',
    message: (i) =>
      `The disk ${i.host ? `on ${who(i)} ` : ''}is full${/quota/i.test(i.stderr) ? ' (disk quota exceeded)' : ''}: files could not be written.`,
    fix: () =>
      'Free some space on the destination (the .lipsync/trash folder there holds replaced and deleted files you may remove), then sync again.',
    files: (i) => rsyncErrorFiles(i.stderr, 'receiver'),
  },
  {
    tool: 'rsync',
    re: /\brsync: (?:command )?not found|command not found: rsync|'rsync': No such file or directory|rsync: No such file or directory\s*$/m,
    kind: 'rsync-missing-remote',
    message: (i) => `rsync is not installed on ${who(i)} (or not on its PATH).`,
    fix: () =>
      'Install rsync on the server, e.g. `sudo apt install rsync` (Debian/Ubuntu), `sudo dnf install rsync` (Fedora) or `opkg install rsync` (NAS); then try again.',
  },
  {
    tool: 'rsync',
    codes: [127],
    kind: 'rsync-missing-remote',
    message: (i) => `rsync is not installed on ${who(i)} (or not on its PATH).`,
    fix: () => 'Install rsync on the server, e.g. `sudo apt install rsync` (Debian/Ubuntu); then try again.',
  },
  {
    tool: 'rsync',
    re: /protocol version mismatch -- is your shell clean\?/,
    kind: 'unknown',
    message: (i) => `The login shell on ${who(i)} prints text for non-interactive sessions, which breaks rsync.`,
    fix: () =>
      'Make ~/.bashrc (or your shell\'s startup file) on the server print nothing unless the shell is interactive, e.g. start it with `[ -z "$PS1" ] && return`.',
  },
  {
    tool: 'rsync',
    re: /on remote machine: .*unknown option|rsync: (?:--secluded-args|--protect-args|--delete-missing-args|--info=\S+): unknown option|unrecognized option/,
    kind: 'rsync-too-old',
    message: (i) => `The rsync on ${who(i)} is too old for lipsync (it needs rsync 3.1.0 or newer).`,
    fix: () => 'Upgrade rsync on the server to 3.1.0 or newer.',
  },
  {
    tool: 'rsync',
    re: /\[Receiver\] (?:change_dir#\d|mkdir) "(.*)" failed: No such file or directory/,
    kind: 'remote-missing',
    message: (i) => `The folder ${i.path ?? unescapeRsyncName(i.match?.[1] ?? '')} does not exist on ${who(i)}.`,
    fix: () => 'Check the remote folder in the pair settings (is the disk mounted?), or create it.',
  },
  {
    tool: 'rsync',
    re: /\[Receiver\] (?:change_dir#\d|mkdir) "(.*)" failed: Not a directory/,
    kind: 'remote-not-dir',
    message: (i) => `The remote path ${i.path ?? unescapeRsyncName(i.match?.[1] ?? '')} on ${who(i)} is not a folder.`,
    fix: () => "Choose a folder as the pair's remote path.",
  },
  {
    tool: 'rsync',
    codes: [20, null],
    kind: 'cancelled',
    message: () => 'The transfer was cancelled.',
  },
  {
    tool: 'rsync',
    re: /received SIG(?:INT|TERM|HUP|USR1)/,
    kind: 'cancelled',
    message: () => 'The transfer was cancelled.',
  },
  {
    tool: 'ssh',
    codes: [null],
    kind: 'cancelled',
    message: () => 'The operation was cancelled.',
  },
  {
    tool: 'rsync',
    codes: [24],
    kind: 'vanished',
    message: (i) => {
      const n = rsyncErrorFiles(i.stderr, undefined, true).length;
      return `${n === 1 ? 'One file' : n > 1 ? `${n} files` : 'Some files'} disappeared before they could be sent (changed while syncing); they will be picked up next time.`;
    },
    files: (i) => rsyncErrorFiles(i.stderr, undefined, true),
  },
  {
    // On the receiver (the server side of a push): rsync could not write there, either
    // for lack of permission (EACCES) or because the file is protected (EPERM: an
    // immutable or append-only flag, a sticky folder owned by someone else).
    tool: 'rsync',
    re: /^rsync: (?:\[(?:receiver|Receiver|generator)\] )?(?:mkstemp|recv_generator|rename|delete_file|rmdir|unlink|mkdir|chmod|set_times|symlink|open) .*(?:Permission denied|Operation not permitted)|^rsync: \[(?:receiver|Receiver|generator)\] .*(?:Permission denied|Operation not permitted)/m,
    kind: 'permission-denied',
    message: (i) => {
      const n = rsyncErrorFiles(i.stderr, 'receiver').length;
      const what = n === 1 ? 'one file' : n > 1 ? `${n} files` : 'some files';
      return /Permission denied/.test(i.stderr)
        ? `No permission to write ${what} on ${who(i)}.`
        : `${who(i)} refused to change ${what} (operation not permitted: protected there).`;
    },
    fix: (i) => {
      const denied = /Permission denied/.test(i.stderr);
      const protectedToo = /Operation not permitted/.test(i.stderr);
      const parts: string[] = [];
      if (denied)
        parts.push(
          `Check that ${i.user ? `the user ${i.user}` : 'your user'} owns or can write the files listed and the folders holding them on the server${i.path ? ` (in ${i.path})` : ''}, e.g. \`chmod u+w FOLDER\`.`,
        );
      if (protectedToo)
        parts.push(
          'The files listed are protected on the server: an immutable or append-only flag (`lsattr FILE` shows it, `sudo chattr -i FILE` removes it), or a folder with the sticky bit owned by another user.',
        );
      parts.push('lipsync tries them again by itself; the other files were synced.');
      return parts.join(' ');
    },
    files: (i) => rsyncErrorFiles(i.stderr, 'receiver'),
  },
  {
    tool: 'rsync',
    codes: [23],
    kind: 'partial-transfer',
    message: (i) => {
      const n = rsyncErrorFiles(i.stderr, 'sender').length;
      return `${n === 1 ? 'One file' : n > 1 ? `${n} files` : 'Some files'} could not be sent${/Permission denied/.test(i.stderr) ? ' (no permission to read them here)' : ''}.`;
    },
    fix: () => 'Check that you can read the files listed; the others were synced.',
    files: (i) => {
      const f = rsyncErrorFiles(i.stderr, 'sender');
      return f.length > 0 ? f : rsyncErrorFiles(i.stderr);
    },
  },
  {
    // sh/mkdir/mv on the server (remote ops) refused a path.
    tool: 'ssh',
    re: /Permission denied|Operation not permitted|Read-only file system/,
    kind: 'permission-denied',
    message: (i) =>
      `No permission to change ${i.path ?? 'the remote folder'} on ${who(i)}${/Read-only/.test(i.stderr) ? ' (read-only file system)' : ''}.`,
    fix: (i) => `Check that ${i.user ? `the user ${i.user}` : 'your user'} can write ${i.path ?? 'the remote folder'}.`,
  },
];

function lastNonEmptyLine(s: string): string {
  const lines = s
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter(Boolean);
  // rsync's own "rsync error: ... (code N) at file.c(123)" footer says less than the line before it.
  for (let k = lines.length - 1; k >= 0; k--) {
    const l = lines[k] as string;
    if (!/^rsync error: |^rsync: connection unexpectedly closed/.test(l)) return l;
  }
  return lines[lines.length - 1] ?? '';
}

const MAX_DETAIL = 4000;

/**
 * Maps a failed ssh or rsync run to a LipsyncError using FAILURE_TABLE. Always
 * returns an error (kind 'unknown' with the last stderr line when nothing matches).
 */
export function classifyFailure(
  tool: FailingTool,
  code: number | null,
  stderr: string,
  ctx: FailureContext = {},
): LipsyncError {
  const detail = stderr.length > MAX_DETAIL ? stderr.slice(-MAX_DETAIL) : stderr;
  const lastLine = lastNonEmptyLine(stderr);
  for (const rule of FAILURE_TABLE) {
    if (rule.tool && rule.tool !== tool) continue;
    if (rule.codes && !rule.codes.includes(code)) continue;
    let match: RegExpExecArray | null = null;
    if (rule.re) {
      match = rule.re.exec(stderr);
      if (!match) continue;
    }
    if (!rule.codes && !rule.re) continue;
    const input: RuleInput = { ...ctx, tool, code, stderr, match, lastLine };
    const extra: { fix?: string; files?: string[]; detail?: string } = {};
    const fix = rule.fix?.(input);
    if (fix) extra.fix = fix;
    const files = rule.files?.(input);
    if (files && files.length > 0) extra.files = files;
    if (detail) extra.detail = detail;
    return new LipsyncError(rule.kind, rule.message(input), extra);
  }
  const how = code === null ? 'was stopped by a signal' : `failed (exit code ${code})`;
  const where = ctx.host ? ` while talking to ${ctx.user ? `${ctx.user}@` : ''}${ctx.host}` : '';
  return new LipsyncError(
    'unknown',
    `${tool} ${how}${where}${lastLine ? `: ${lastLine}` : '.'}`,
    detail ? { detail } : {},
  );
}
