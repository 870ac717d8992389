/**
 * Picks the transport: the Electron preload's `window.lipsync` when present, otherwise
 * the web bridge used by `lipsync run --web` (fetch for calls, a WebSocket for live
 * state and log pushes; the token comes from the page URL's `#token=...`).
 */
import type { ErrorInfo } from '../../shared/errors.js';
import type { EngineStatus, LogRecord } from '../../shared/status.js';
import { ApiError } from './api.js';
import type { LipsyncBridge } from './ipc.js';
import type * as Ipc from '../../shared/ipc.js';

// shared/ipc.ts constants, restated so the bundle does not pull in zod: tsc fails if they drift.
const WEB_PATHS: typeof Ipc.WEB_PATHS = { call: '/api/call', events: '/api/events' };
const WEB_PROTOCOL: typeof Ipc.WEB_PROTOCOL = 'lipsync';
const WEB_TOKEN_PROTOCOL_PREFIX: typeof Ipc.WEB_TOKEN_PROTOCOL_PREFIX = 'lipsync.';

/** `unauthorized`: the service answers but refuses this page's token (it was restarted with a new one). */
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'unauthorized';

export interface WebBridge extends LipsyncBridge {
  /** The event socket's state (for a "reconnecting…" banner); returns an unsubscribe function. */
  onConnection(cb: (state: ConnectionState) => void): () => void;
  /** Use another access token (a new link pasted in the same tab): reconnects at once. */
  setToken(token: string): void;
  close(): void;
}

declare global {
  interface Window {
    lipsync?: LipsyncBridge;
  }
}

/** `#token=abc` (also `#a=b&token=abc`) → `abc`. */
export function tokenFromHash(hash: string): string | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const t = params.get('token');
  return t && t.length > 0 ? t : null;
}

export interface WebBridgeOptions {
  /** Origin the daemon serves on, e.g. `http://127.0.0.1:8080`. */
  origin: string;
  token: string;
  /** Reconnect delays (ms) grow from min to max. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  fetchImpl?: typeof fetch;
  WebSocketImpl?: typeof WebSocket;
}

export function createWebBridge(opts: WebBridgeOptions): WebBridge {
  const fetchImpl = opts.fetchImpl ?? fetch.bind(globalThis);
  const WS = opts.WebSocketImpl ?? WebSocket;
  const minDelay = opts.reconnectMinMs ?? 500;
  const maxDelay = opts.reconnectMaxMs ?? 10_000;
  const stateCbs = new Set<(s: EngineStatus) => void>();
  const logCbs = new Set<(r: LogRecord) => void>();
  const connCbs = new Set<(c: ConnectionState) => void>();
  let conn: ConnectionState = 'connecting';
  let ws: WebSocket | null = null;
  let delay = minDelay;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let closed = false;
  let token = opts.token;

  const setConn = (c: ConnectionState) => {
    conn = c;
    for (const cb of connCbs) cb(c);
  };

  const wsUrl = opts.origin.replace(/^http/, 'ws') + WEB_PATHS.events;

  const connect = () => {
    if (closed) return;
    if (conn !== 'unauthorized') setConn('connecting');
    let sock: WebSocket;
    try {
      // The server answers with the plain `lipsync` protocol: a browser drops a socket whose answer it did not offer.
      sock = new WS(wsUrl, [WEB_PROTOCOL, `${WEB_TOKEN_PROTOCOL_PREFIX}${token}`]);
    } catch {
      scheduleReconnect();
      return;
    }
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      opened = true;
      delay = minDelay;
      setConn('open');
    };
    sock.onmessage = (ev: MessageEvent) => {
      let msg: { type?: string; data?: unknown };
      try {
        msg = JSON.parse(String(ev.data)) as { type?: string; data?: unknown };
      } catch {
        return;
      }
      if (msg.type === 'state') for (const cb of stateCbs) cb(msg.data as EngineStatus);
      else if (msg.type === 'log') for (const cb of logCbs) cb(msg.data as LogRecord);
    };
    sock.onclose = () => {
      if (ws === sock) ws = null;
      if (closed) return;
      scheduleReconnect();
      // Refused before it opened: a browser does not say why, so ask the call endpoint
      // whether the token is the problem (then the page says so instead of "Reconnecting…").
      if (!opened) void probeToken(token);
    };
    sock.onerror = () => {
      /* onclose follows and reconnects */
    };
  };

  const probeToken = async (tried: string) => {
    try {
      const res = await fetchImpl(`${opts.origin}${WEB_PATHS.call}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${tried}` },
        body: JSON.stringify({ method: 'status', params: {} }),
      });
      if ((res.status === 401 || res.status === 403) && tried === token && conn !== 'open') setConn('unauthorized');
    } catch {
      /* not reachable: "Reconnecting…" is right */
    }
  };

  const scheduleReconnect = () => {
    // A refused token stays the news until a socket opens or a new token comes.
    if (conn !== 'unauthorized') setConn('closed');
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = null;
      connect();
    }, delay);
    delay = Math.min(maxDelay, delay * 2);
  };

  connect();

  return {
    async call(method, params) {
      let res: Response;
      try {
        res = await fetchImpl(`${opts.origin}${WEB_PATHS.call}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ method, params: params ?? {} }),
        });
      } catch (e) {
        throw new ApiError({
          kind: 'daemon-unreachable',
          message: 'The lipsync service is not reachable.',
          fix: 'Check that `lipsync run --web` is still running, then reload this page.',
          detail: String(e),
        });
      }
      let body: { result?: unknown; error?: ErrorInfo } | null = null;
      try {
        body = (await res.json()) as { result?: unknown; error?: ErrorInfo };
      } catch {
        body = null;
      }
      if (body && body.error) throw new ApiError(body.error);
      if (res.status === 401 || res.status === 403) {
        throw new ApiError({
          kind: 'auth-failed',
          message: 'This page is not allowed to talk to the lipsync service (bad or missing token).',
          fix: 'Open the address `lipsync run --web` printed (it ends in #token=…).',
        });
      }
      if (!res.ok || !body || !('result' in body)) {
        throw new ApiError({ kind: 'unknown', message: `The lipsync service answered HTTP ${res.status}.` });
      }
      return body.result as never;
    },
    onState(cb) {
      stateCbs.add(cb);
      return () => stateCbs.delete(cb);
    },
    onLog(cb) {
      logCbs.add(cb);
      return () => logCbs.delete(cb);
    },
    onConnection(cb) {
      connCbs.add(cb);
      cb(conn);
      return () => connCbs.delete(cb);
    },
    setToken(next) {
      if (closed || !next || next === token) return;
      token = next;
      delay = minDelay;
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      const old = ws;
      ws = null;
      if (old) {
        // Its close must not schedule a second reconnect: this one replaces it.
        old.onclose = null;
        old.close();
      }
      setConn('connecting');
      connect();
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      ws?.close();
      setConn('closed');
    },
  };
}

/** A bridge that fails every call with a clear message (no preload and no token). */
function missingBridge(): LipsyncBridge {
  return {
    call: () =>
      Promise.reject(
        new ApiError({
          kind: 'daemon-unreachable',
          message: 'This page was opened without its access token.',
          fix: 'Open the address `lipsync run --web` printed (it ends in #token=…), or run the desktop app.',
        }),
      ),
    onState: () => () => {},
    onLog: () => () => {},
  };
}

/**
 * The bridge for this page. In a browser it also follows the token in the address: a new
 * link pasted in the same tab changes only the hash (no page load), so on `hashchange` or
 * `popstate` a new token makes the web bridge reconnect with it (and a page opened without
 * a token reloads, to start with the one it now has).
 */
export function pickBridge(
  win: Window = window,
  opts: Pick<WebBridgeOptions, 'fetchImpl' | 'WebSocketImpl'> = {},
): LipsyncBridge {
  if (win.lipsync) return win.lipsync;
  const token = tokenFromHash(win.location.hash);
  const bridge = token ? createWebBridge({ origin: win.location.origin, token, ...opts }) : missingBridge();
  const onAddress = () => {
    const next = tokenFromHash(win.location.hash);
    if (!next) return;
    if (isWebBridge(bridge)) bridge.setToken(next);
    else win.location.reload();
  };
  win.addEventListener?.('hashchange', onAddress);
  win.addEventListener?.('popstate', onAddress);
  return bridge;
}

export function isWebBridge(b: LipsyncBridge): b is WebBridge {
  return typeof (b as Partial<WebBridge>).onConnection === 'function';
}
