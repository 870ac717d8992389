/**
 * Which pages may talk to the main process. Every IPC handler checks the URL of the
 * frame that sent the message (`event.senderFrame.url`) against the app's own pages:
 *   - a `file://` entry allows exactly that file (the built renderer's index.html),
 *     whatever its query or #hash (the renderer routes with the hash);
 *   - an `http(s)://` entry allows that origin (the renderer's dev server, only when
 *     the shell runs from `electron-vite dev`).
 * Anything else is refused: another file, about:blank, data:, a remote site, a
 * missing frame (the sender navigated away or was destroyed).
 */
export function isTrustedSender(url: string | null | undefined, allowed: readonly string[]): boolean {
  if (!url) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.username || u.password) return false;
  for (const entry of allowed) {
    let a: URL;
    try {
      a = new URL(entry);
    } catch {
      continue;
    }
    if (a.protocol === 'file:') {
      if (u.protocol === 'file:' && u.host === a.host && u.pathname === a.pathname) return true;
    } else if (a.protocol === 'http:' || a.protocol === 'https:') {
      if (u.origin === a.origin) return true;
    }
  }
  return false;
}

/** Navigation inside the window is refused: only the app's own page (e.g. a hash change) may load. */
export function isAllowedNavigation(url: string, allowed: readonly string[]): boolean {
  return isTrustedSender(url, allowed);
}

/**
 * The Content-Security-Policy of the app's windows (also sent as a response header).
 * No remote code, no inline scripts, no eval, no plugins, no framing; the renderer
 * talks to the engine only through the preload bridge, so no network either
 * (except the dev server's websocket for hot reload in development).
 */
export function contentSecurityPolicy(devOrigin?: string): string {
  const dev = devOrigin ? ` ${devOrigin}` : '';
  const devWs = devOrigin ? ` ${devOrigin.replace(/^http/, 'ws')}` : '';
  return [
    `default-src 'none'`,
    `script-src 'self'${dev}`,
    `style-src 'self' 'unsafe-inline'${dev}`,
    `img-src 'self' data:${dev}`,
    `font-src 'self'${dev}`,
    `connect-src 'self'${dev}${devWs}`,
    `base-uri 'none'`,
    `form-action 'none'`,
    `frame-ancestors 'none'`,
    `object-src 'none'`,
  ].join('; ');
}
