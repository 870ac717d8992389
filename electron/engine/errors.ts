/**
 * Engine errors: one class, and the ONE place where a failure is classified:
 * - FAILURE_TABLE turns a failed ssh or rsync run (exit code + stderr) into an
 *   ErrorKind with a sentence a person understands and, when we know it, what to
 *   do about it. In the style of GitHub Desktop's git error table: the first
 *   matching rule wins, so specific rules come first (one row per condition);
 * - classifyPullFailure rewords it for a pull (the receiver is this computer);
 * - classifyScriptFailure reads a remote script's run (remote/script.ts names its
 *   exit codes as ScriptConditions); spawnFailure a program that would not start;
 * - fsError an errno of node:fs on either side;
 * - the conditions found by our own checks (remoteMissing, remoteNotDir,
 *   metaNotDir, pathsDenied, listingIncomplete, localMissing, localNotDir) are
 *   worded here too;
 * - isFatalKind says which kinds stop a pair until the user acts.
 *
 * Over ~400 lines on purpose: it is one table, and the point of it is that every
 * failure's words and fix are found in this one file (most of its lines are rows).
 */

import { ERROR_KINDS, type ErrorInfo, type ErrorKind } from '../../shared/errors.js';
import { META_DIR as META_DIR_NAME, TRASH_DIR } from '../../shared/layout.js';

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
  /** Exit codes that match (null = killed by a signal). With `re` too, both must match (unless `either`). */
  codes?: (number | null)[];
  re?: RegExp;
  /** With `codes` and `re`: either one matching is enough. */
  either?: true;
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
    // The server's shell could not find rsync: its message, or exit code 127 alone.
    tool: 'rsync',
    codes: [127],
    re: /\brsync: (?:command )?not found|command not found: rsync|'rsync': No such file or directory|rsync: No such file or directory\s*$/m,
    either: true,
    kind: 'rsync-missing-remote',
    message: (i) => `rsync is not installed on ${who(i)} (or not on its PATH).`,
    fix: () =>
      'Install rsync on the server, e.g. `sudo apt install rsync` (Debian/Ubuntu), `sudo dnf install rsync` (Fedora) or `opkg install rsync` (NAS); then try again.',
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
    const codeOk = !rule.codes || rule.codes.includes(code);
    let match: RegExpExecArray | null = null;
    if (rule.either) {
      match = rule.re?.exec(stderr) ?? null;
      if (!codeOk && !match) continue;
    } else {
      if (!codeOk) continue;
      if (rule.re) {
        match = rule.re.exec(stderr);
        if (!match) continue;
      }
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

// ---------------------------------------------------------------------------
// Conditions found by lipsync's own checks and scripts

/** ' on HOST' for a server, '' for a local remote (a mounted disk): `host` null. */
const onHost = (host: string | null | undefined) => (host ? ` on ${host}` : '');

/** The remote root (or a folder in it) does not exist. */
export function remoteMissing(path: string, host: string | null, detail?: string): LipsyncError {
  return new LipsyncError('remote-missing', `The folder ${path} does not exist${onHost(host)}.`, {
    fix: 'Check the remote folder in the pair settings (is the disk mounted?), or create it.',
    ...(detail ? { detail } : {}),
  });
}

/** The remote root (or a folder asked for in it) is not a folder. */
export function remoteNotDir(path: string, host: string | null, detail?: string): LipsyncError {
  return new LipsyncError('remote-not-dir', `${path}${onHost(host)} is not a folder.`, {
    fix: "Choose a folder as the pair's remote path.",
    ...(detail ? { detail } : {}),
  });
}

/** The pair's local folder does not exist. */
export function localMissing(path: string, detail?: string): LipsyncError {
  return new LipsyncError('local-missing', `The folder ${path} does not exist.`, {
    fix: 'Check the local folder in the pair settings (is the disk mounted?), or create it.',
    ...(detail !== undefined ? { detail } : {}),
  });
}

/** The pair's local folder is not a folder. */
export function localNotDir(path: string, detail?: string): LipsyncError {
  return new LipsyncError('local-not-dir', `${path} is not a folder.`, {
    fix: "Choose a folder as the pair's local path.",
    ...(detail !== undefined ? { detail } : {}),
  });
}

/** A folder of ROOT/.lipsync (or a trash day) is a symlink or a file (remote/ops-ssh.ts META_CHECK, and the local backend's). */
export function metaNotDir(path: string, host: string | null, detail?: string): LipsyncError {
  return new LipsyncError(
    'remote-not-dir',
    `${path}${onHost(host)} is a symlink or a file, not lipsync's own folder: nothing was transferred.`,
    {
      fix: `Someone replaced it on the server. Remove that symlink or file there (lipsync makes the folder again); the pair then goes on by itself.`,
      ...(detail !== undefined ? { detail } : {}),
    },
  );
}

/** Paths (relative to `root`) that can't be looked at: a folder above them is not searchable. */
export function pathsDenied(files: string[], root: string, host: string): LipsyncError {
  return new LipsyncError(
    'permission-denied',
    `No permission to look at ${files.length === 1 ? 'one path' : `${files.length} paths`} on ${host}.`,
    { fix: `Check that your user can read the folders holding them in ${root}.`, files },
  );
}

/** A listing that could not read some folders: it is incomplete, nothing may be called deleted. */
export function listingIncomplete(where: string, host: string | null, files: string[], detail?: string): LipsyncError {
  if (host === null) {
    const n = files.length;
    return new LipsyncError(
      'permission-denied',
      `${n === 1 ? 'One folder' : `${n} folders`} in ${where} could not be read; the listing is incomplete.`,
      { fix: `Check that your user can read the folders listed in ${where}.`, files: files.slice(0, 100) },
    );
  }
  return new LipsyncError(
    'permission-denied',
    `Some folders in ${where} on ${host} could not be read; the listing is incomplete.`,
    {
      fix: `Check that your user can read everything in ${where}.`,
      ...(files.length > 0 ? { files: files.slice(0, 100) } : {}),
      ...(detail !== undefined ? { detail } : {}),
    },
  );
}

/**
 * What a remote script's exit code means (remote/script.ts owns the codes and maps
 * them to these); null for any other code.
 */
export type ScriptCondition = 'root-missing' | 'root-not-dir' | 'no-inotifywait' | 'meta-failed' | 'meta-not-dir';

export interface ScriptRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  timedOut: boolean;
  condition: ScriptCondition | null;
}

/**
 * The error for a remote script run that failed (a non-zero exit other than the
 * ones the caller accepts). `ctx.host` is set for an ssh remote (and then ssh's
 * own failures go through FAILURE_TABLE); `ctx.path` is the folder it worked on.
 * `timeoutMs`: the limit the run had, named in the message when given.
 */
export function classifyScriptFailure(r: ScriptRun, ctx: FailureContext, timeoutMs?: number): LipsyncError {
  const detail = r.stderr.slice(-MAX_DETAIL);
  const host = ctx.host ?? null;
  const path = ctx.path ?? '';
  if (r.timedOut) {
    return new LipsyncError(
      'host-unreachable',
      timeoutMs !== undefined && host
        ? `${host} did not answer within ${Math.round(timeoutMs / 1000)} s.`
        : `${host ?? 'The remote folder'} did not answer in time.`,
      { fix: 'Check the network connection to the server, then try again.', detail },
    );
  }
  switch (r.condition) {
    case 'root-missing':
      return remoteMissing(path, host, detail);
    case 'root-not-dir':
      return remoteNotDir(path, host, detail);
    case 'no-inotifywait':
      return new LipsyncError('unknown', `inotifywait is not installed${onHost(host)}.`, {
        fix: 'Install inotify-tools on the server (e.g. `sudo apt install inotify-tools`), or let lipsync poll.',
        detail,
      });
    case 'meta-failed':
      return new LipsyncError('permission-denied', `Could not write ${path}/${META_DIR_NAME}${onHost(host)}.`, {
        fix: `Check that your user can write ${path}.`,
        detail,
      });
    case 'meta-not-dir':
      return metaNotDir(
        /lipsync: not a folder: (.*)/.exec(r.stderr)?.[1] ?? `${path}/${META_DIR_NAME}`,
        host,
        r.stderr,
      );
    default:
      break;
  }
  if (host) return classifyFailure('ssh', r.code, r.stderr, ctx);
  const how = r.code === null ? `was stopped (${r.signal ?? 'signal'})` : `failed (exit code ${r.code})`;
  return new LipsyncError('unknown', `A command on ${path} ${how}.`, detail ? { detail } : {});
}

/** A program (ssh, rsync, sh) that could not be started. */
export function spawnFailure(cmd: string, e: unknown): LipsyncError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    if (cmd === 'ssh') {
      return new LipsyncError('unknown', 'The ssh program was not found on this computer.', {
        fix: 'Install OpenSSH (the ssh client), e.g. `sudo apt install openssh-client`.',
        cause: e,
      });
    }
    if (cmd === 'rsync') {
      return new LipsyncError('rsync-missing-local', 'rsync is not installed on this computer.', {
        fix: 'Install rsync, e.g. `sudo apt install rsync`.',
        cause: e,
      });
    }
  }
  return new LipsyncError('unknown', `Could not start ${cmd}: ${(e as Error).message}`, { cause: e });
}

// ---------------------------------------------------------------------------
// node:fs errors

/**
 * An errno of node:fs while doing `what` ('read', 'create', 'write', 'move', 'open')
 * to `path`, on a local remote or this computer's side.
 */
export function fsError(e: unknown, path: string, what: string): LipsyncError {
  const code = (e as NodeJS.ErrnoException).code;
  const detail = `${what}: ${(e as Error).message}`;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      if (what === 'read') {
        return new LipsyncError('permission-denied', `No permission to read ${path}.`, {
          fix: `Check that your user can read ${path}.`,
          files: [path],
          detail: (e as Error).message,
        });
      }
      return new LipsyncError('permission-denied', `No permission to ${what} ${path}.`, {
        fix: `Check that your user can write ${path}.`,
        detail,
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new LipsyncError('disk-full', `The disk holding ${path} is full.`, {
        fix: 'Free some space on that disk, then try again.',
        detail,
      });
    case 'ENOENT':
      return remoteMissing(path, null, detail);
    case 'ENOTDIR':
      return remoteNotDir(path, null, detail);
    default:
      return new LipsyncError('unknown', `Could not ${what} ${path}: ${(e as Error).message}`, { detail });
  }
}

// ---------------------------------------------------------------------------
// Pulls

/**
 * The failure table speaks for a push (the receiver is the server). In a pull
 * the receiver is this computer (`localRoot`, absolute): reword what depends on
 * the side, and report a missing/non-folder remote ROOT (`ctx.path`: the sender
 * cannot chdir into it; rsync then stops before deleting anything) as
 * remote-missing/remote-not-dir.
 */
export function classifyPullFailure(
  code: number | null,
  stderr: string,
  ctx: FailureContext,
  localRoot: string,
): LipsyncError {
  const remotePath = ctx.path ?? '';
  const host = ctx.host ?? null;
  const detail = stderr.length > MAX_DETAIL ? stderr.slice(-MAX_DETAIL) : stderr;
  const strip = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);
  for (const m of stderr.matchAll(
    /\[sender\] change_dir "(.*)" failed: (No such file or directory|Not a directory)/g,
  )) {
    if (strip(unescapeRsyncName(m[1] as string)) !== strip(remotePath)) continue;
    return m[2] === 'Not a directory'
      ? remoteNotDir(remotePath, host, detail)
      : remoteMissing(remotePath, host, detail);
  }
  const e = classifyFailure('rsync', code, stderr, ctx);
  const local = localRoot;
  const server = host ?? 'the server';
  const n = e.files?.length ?? 0;
  const count = n === 1 ? 'One file' : n > 1 ? `${n} files` : 'Some files';
  const redo = (message: string, fix?: string): LipsyncError => {
    const extra: { fix?: string; files?: string[]; detail?: string; cause?: unknown } = { cause: e };
    if (fix !== undefined) extra.fix = fix;
    else if (e.fix !== undefined) extra.fix = e.fix;
    if (e.files !== undefined) extra.files = e.files;
    if (e.detail !== undefined) extra.detail = e.detail;
    return new LipsyncError(e.kind, message, extra);
  };
  switch (e.kind) {
    case 'permission-denied':
      return redo(
        `No permission to write some files in ${local}.`,
        `Check that your user owns or can write ${local} and the files in it.`,
      );
    case 'disk-full':
      return redo(
        `The disk holding ${local} is full${/quota/i.test(stderr) ? ' (disk quota exceeded)' : ''}: files could not be written.`,
        `Free some space on this computer (${local}/${TRASH_DIR} holds replaced and deleted files you may remove), then sync again.`,
      );
    case 'partial-transfer':
      return redo(
        `${count} could not be fetched from ${server}${/Permission denied/.test(stderr) ? ' (no permission to read them there)' : ''}.`,
        'Check that the files listed can be read on the server; the others were synced.',
      );
    case 'vanished':
      return redo(
        `${count} changed or disappeared on ${server} before they could be fetched; they will be picked up next time.`,
      );
    default:
      return e;
  }
}

// ---------------------------------------------------------------------------
// Kinds

/** Kinds that stop a pair until the user acts (retrying can't help). */
export function isFatalKind(kind: ErrorKind): boolean {
  return ['remote-missing', 'remote-not-dir', 'rsync-missing-remote', 'host-key-changed', 'local-missing'].includes(
    kind,
  );
}
