/**
 * A server address as people type it into one field: `host`, `user@host`,
 * `host:port`, `user@host:port`, `[v6]:port`, or a bare IPv6 address. Pure; no imports.
 */
export interface ServerAddress {
  host: string;
  user?: string;
  port?: number;
}

/** Splits `text` into host, user and port; null when it is not an address (spaces, empty parts, a bad port). */
export function splitServerAddress(text: string): ServerAddress | null {
  const t = text.trim();
  if (!t || /\s/.test(t)) return null;
  const at = t.lastIndexOf('@');
  const user = at >= 0 ? t.slice(0, at) : undefined;
  if (user !== undefined && !user) return null;
  let rest = at >= 0 ? t.slice(at + 1) : t;
  let port: number | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(rest);
  if (v6) {
    rest = v6[1]!;
    if (v6[2] !== undefined) port = Number(v6[2]);
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    const [h, p] = rest.split(':') as [string, string];
    if (!/^\d+$/.test(p)) return null;
    rest = h;
    port = Number(p);
  }
  if (!rest) return null;
  if (port !== undefined && (port < 1 || port > 65535)) return null;
  const out: ServerAddress = { host: rest };
  if (user !== undefined) out.user = user;
  if (port !== undefined) out.port = port;
  return out;
}
