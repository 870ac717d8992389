/**
 * The one parser of a pair's remote as people type it, for the engine
 * (electron/engine/remote/spec.ts adds the path normalising and the error) and
 * the renderer (the wizard's servers of existing pairs). Pure; no imports.
 *
 *   [user@]host[:port]:/absolute/path      over ssh
 *   [user@][v6addr][:port]:/absolute/path  IPv6 in brackets
 *   /absolute/local/path                   a local path (a mounted disk, a NAS share)
 *
 * Hosts and users are checked strictly: a host starting with '-' would be read
 * by ssh as an option, so it is refused; so are spaces and control characters.
 */

/** A parsed remote; `path` as typed (absolute, not normalised). */
export type RemoteAddress =
  { kind: 'ssh'; user?: string; host: string; port?: number; path: string } | { kind: 'local'; path: string };

/** Why a typed remote is not one: what to show, and how to fix it. */
export interface RemoteAddressProblem {
  message: string;
  fix: string;
}

export type ParsedRemoteAddress = { ok: true; remote: RemoteAddress } | { ok: false; problem: RemoteAddressProblem };

const FORMS =
  'Use user@host:/absolute/path, user@host:port:/absolute/path, or an absolute local path like /mnt/nas/folder.';

/** Thrown inside parseRemoteAddress only; it returns it as `problem`. */
class Invalid extends Error {
  constructor(
    message: string,
    readonly fix: string = FORMS,
  ) {
    super(message);
  }
}

function checkPath(p: string, input: string): string {
  if (p === '')
    throw new Invalid(
      `"${input}" has no path after the host.`,
      'Add an absolute path after the colon, e.g. me@server:/home/me/folder.',
    );
  if (p.includes('\0')) throw new Invalid('The path contains a NUL character.');
  if (!p.startsWith('/')) {
    throw new Invalid(
      `The remote path "${p}" is not absolute.`,
      `Give an absolute path starting with '/' (for example /home/you/${p.replace(/^~\/?/, '') || 'folder'}); '~' and relative paths are not supported.`,
    );
  }
  return p;
}

// Hostnames (RFC 1123 labels, also underscores for ssh-config aliases), IPv4 addresses.
const HOST_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$/;
// IPv6 (loose: hex groups, colons, an embedded IPv4, an optional %zone).
const IPV6_RE = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9_.-]+)?$/;
// POSIX portable user names, plus a trailing '$' (Samba machine accounts).
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;

function checkHost(host: string, ipv6: boolean): string {
  if (host === '') throw new Invalid('The host name is empty.');
  if (host.startsWith('-'))
    throw new Invalid(`The host "${host}" starts with '-', which ssh would read as an option.`, 'Check the host name.');
  if (ipv6 ? !IPV6_RE.test(host) : !HOST_RE.test(host)) {
    throw new Invalid(
      `"${host}" is not a valid host name${ipv6 ? ' or IPv6 address' : ''}.`,
      'Use a host name, an IPv4 address, or an IPv6 address in brackets like [::1].',
    );
  }
  return host;
}

function checkUser(user: string): string {
  if (user === '') throw new Invalid("The user name before '@' is empty.");
  if (user.startsWith('-'))
    throw new Invalid(`The user "${user}" starts with '-', which ssh would read as an option.`, 'Check the user name.');
  if (!USER_RE.test(user))
    throw new Invalid(`"${user}" is not a valid user name.`, 'Use letters, digits, ".", "_" and "-" only.');
  return user;
}

function checkPort(s: string): number {
  if (!/^\d{1,5}$/.test(s)) throw new Invalid(`"${s}" is not a valid port.`, 'Use a port number from 1 to 65535.');
  const port = Number(s);
  if (port < 1 || port > 65535) throw new Invalid(`Port ${s} is out of range.`, 'Use a port number from 1 to 65535.');
  return port;
}

/** Parses what the user typed (surrounding white space ignored). */
export function parseRemoteAddress(input: string): ParsedRemoteAddress {
  try {
    return { ok: true, remote: parse(input) };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, problem: { message: e.message, fix: e.fix } };
    throw e;
  }
}

function parse(input: string): RemoteAddress {
  const s = input.trim();
  if (s === '') throw new Invalid('The remote is empty.');
  if (s.includes('\0')) throw new Invalid('The remote contains a NUL character.');
  if (s.startsWith('/')) return { kind: 'local', path: s };

  let user: string | undefined;
  let host: string;
  let rest: string;
  let ipv6 = false;

  const bracket = s.indexOf('[');
  const firstColon = s.indexOf(':');
  if (bracket !== -1 && (firstColon === -1 || bracket < firstColon)) {
    // [v6]:... or user@[v6]:...
    const prefix = s.slice(0, bracket);
    if (prefix !== '') {
      if (!prefix.endsWith('@')) throw new Invalid(`"${input}" is not a remote I understand.`);
      user = checkUser(prefix.slice(0, -1));
    }
    const close = s.indexOf(']', bracket);
    if (close === -1) throw new Invalid(`"${input}" has '[' without ']'.`);
    host = s.slice(bracket + 1, close);
    ipv6 = true;
    if (s[close + 1] !== ':') throw new Invalid(`"${input}" needs ':' and an absolute path after the host.`);
    rest = s.slice(close + 2);
  } else {
    if (firstColon === -1) {
      throw new Invalid(`"${input}" is neither an absolute local path nor host:/path.`);
    }
    const hostPart = s.slice(0, firstColon);
    rest = s.slice(firstColon + 1);
    const at = hostPart.lastIndexOf('@');
    if (at !== -1) {
      user = checkUser(hostPart.slice(0, at));
      host = hostPart.slice(at + 1);
    } else {
      host = hostPart;
    }
  }
  host = checkHost(host, ipv6);

  let port: number | undefined;
  const portMatch = /^([^/:]*):(.*)$/s.exec(rest);
  if (portMatch && !rest.startsWith('/')) {
    port = checkPort(portMatch[1] as string);
    rest = portMatch[2] as string;
  }
  const path = checkPath(rest, input);

  const spec: RemoteAddress = { kind: 'ssh', host, path };
  if (user !== undefined) spec.user = user;
  if (port !== undefined) spec.port = port;
  return spec;
}
