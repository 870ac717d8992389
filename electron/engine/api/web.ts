import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, WebSocket } from 'ws';
import type { ErrorInfo } from '../../../shared/errors.js';
import {
  WEB_PATHS,
  WEB_PROTOCOL,
  WEB_TOKEN_PROTOCOL_PREFIX,
  type IpcResponse,
  type WebEventMessage,
} from '../../../shared/ipc.js';
import type { Engine } from '../engine.js';
import { LipsyncError } from '../errors.js';
import { handleRequest } from './dispatch.js';

/**
 * `lipsync run --web`: the lipsync UI and its API for a browser on this computer.
 *
 *   GET  /...            the built renderer (out/renderer/), no token needed (it holds no data)
 *   POST /api/call       {method, params} → {result} | {error}; `Authorization: Bearer TOKEN`
 *   GET  /api/events     WebSocket: {type:'state'|'log', data}; token as subprotocol
 *                        `lipsync.TOKEN` (offer `lipsync` too, it is the one chosen) or `?token=`
 *
 * Listens on 127.0.0.1 only. Every request must name this server in its Host header
 * (127.0.0.1:PORT or localhost:PORT: defeats DNS rebinding) and, when it has an Origin,
 * come from this origin (defeats cross-site requests). The token is random per daemon
 * start, kept in <dataDir>/web-token (0600) for `lipsync web-url`.
 */

const MAX_BODY_BYTES = 1024 * 1024;
/** A client that cannot keep up with events is dropped past this much unsent data. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const PING_INTERVAL_MS = 30_000;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

export const webFiles = (dataDir: string) => ({
  token: join(dataDir, 'web-token'),
  info: join(dataDir, 'web.json'),
});

/**
 * The built renderer, out/renderer/, seen from this module: compiled by tsc
 * (out/electron/engine/api/web.js) or bundled with the CLI (out/cli/web.mjs, scripts/bundle-cli.mjs).
 */
export function defaultRendererDir(moduleUrl = import.meta.url): string {
  const dirs = ['../../../renderer/', '../renderer/'].map((rel) => fileURLToPath(new URL(rel, moduleUrl)));
  return dirs.find((d) => existsSync(join(d, 'index.html'))) ?? dirs[0]!;
}

export interface WebServerOptions {
  engine: Engine;
  dataDir: string;
  port: number;
  /** Directory of the built renderer (default out/renderer/). */
  rendererDir?: string;
  onShutdown: () => void;
}

export class WebServer {
  readonly token = randomBytes(32).toString('hex');
  private server: Server | null = null;
  private readonly wss: WebSocketServer;
  private readonly rendererDir: string;
  private readonly clients = new Set<WebSocket>();
  private pingTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: WebServerOptions) {
    this.rendererDir = resolve(opts.rendererDir ?? defaultRendererDir());
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: 64 * 1024,
      handleProtocols: (protocols) => {
        if (protocols.has(WEB_PROTOCOL)) return WEB_PROTOCOL;
        for (const p of protocols) if (p.startsWith(WEB_TOKEN_PROTOCOL_PREFIX)) return p;
        return false;
      },
    });
  }

  get port(): number {
    return this.opts.port;
  }

  /** The address to open: the renderer reads the token from the hash (never sent to the server). */
  get url(): string {
    return `http://127.0.0.1:${this.port}/#token=${this.token}`;
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => void this.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((res, rej) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE') {
          rej(
            new LipsyncError('unknown', `Port ${this.port} on 127.0.0.1 is already in use by another program.`, {
              fix: `Choose another port: lipsync run --web --port ${this.port === 65535 ? 7842 : this.port + 1}`,
            }),
          );
        } else if (e.code === 'EACCES') {
          rej(
            new LipsyncError('permission-denied', `Not allowed to listen on port ${this.port}.`, {
              fix: 'Choose a port above 1023: lipsync run --web --port 7841',
            }),
          );
        } else rej(e);
      });
      server.listen(this.port, '127.0.0.1', () => res());
    });
    this.server = server;
    this.writeFiles();
    this.pingTimer = setInterval(() => {
      for (const ws of this.clients) {
        const alive = ws as WebSocket & { lipsyncAlive?: boolean };
        if (alive.lipsyncAlive === false) {
          ws.terminate();
          continue;
        }
        alive.lipsyncAlive = false;
        ws.ping();
      }
    }, PING_INTERVAL_MS);
    this.pingTimer.unref();
  }

  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const ws of this.clients) ws.terminate();
    this.clients.clear();
    this.wss.close();
    const files = webFiles(this.opts.dataDir);
    for (const f of [files.token, files.info]) {
      // Only ours: a newer daemon may have written its own meanwhile.
      try {
        if (f === files.token && readFileSync(f, 'utf8').trim() !== this.token) continue;
        rmSync(f, { force: true });
      } catch {
        // already gone
      }
    }
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }

  private writeFiles(): void {
    const files = webFiles(this.opts.dataDir);
    const write = (file: string, text: string) => {
      const tmp = `${file}.${process.pid}.tmp`;
      rmSync(tmp, { force: true });
      writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
      renameSync(tmp, file);
    };
    write(files.token, this.token + '\n');
    write(files.info, JSON.stringify({ port: this.port, pid: process.pid }) + '\n');
  }

  // ---------------------------------------------------------------- checks

  private hostOk(req: IncomingMessage): boolean {
    const host = (req.headers.host ?? '').toLowerCase();
    return host === `127.0.0.1:${this.port}` || host === `localhost:${this.port}`;
  }

  private originOk(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    return origin === `http://127.0.0.1:${this.port}` || origin === `http://localhost:${this.port}`;
  }

  private tokenOk(given: string | undefined | null): boolean {
    if (!given) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private bearer(req: IncomingMessage): string | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return m?.[1];
  }

  // ---------------------------------------------------------------- HTTP

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    if (!this.hostOk(req))
      return sendError(res, 403, {
        kind: 'permission-denied',
        message: `Forbidden: the Host header must be 127.0.0.1:${this.port} or localhost:${this.port}.`,
      });
    if (!this.originOk(req))
      return sendError(res, 403, {
        kind: 'permission-denied',
        message: 'Forbidden: requests from other web sites are refused.',
      });
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    } catch {
      return sendError(res, 400, { kind: 'invalid-settings', message: 'Malformed URL.' });
    }
    if (path === WEB_PATHS.call) return this.onCall(req, res);
    if (path === WEB_PATHS.events)
      return sendError(res, 426, { kind: 'invalid-settings', message: 'This is a WebSocket endpoint.' });
    if (path.startsWith('/api/')) return sendError(res, 404, { kind: 'unknown', message: 'No such API endpoint.' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendError(res, 405, { kind: 'invalid-settings', message: 'Method not allowed.' });
    }
    this.serveStatic(req, res, path);
  }

  private async onCall(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return sendError(res, 405, { kind: 'invalid-settings', message: 'Use POST.' });
    }
    if (!this.tokenOk(this.bearer(req))) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return sendError(res, 401, {
        kind: 'auth-failed',
        message: 'Missing or wrong token.',
        fix: 'Open the address `lipsync web-url` prints.',
      });
    }
    let body: string;
    try {
      body = await readBody(req);
    } catch (e) {
      return sendError(res, 413, { kind: 'invalid-settings', message: (e as Error).message });
    }
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      return sendError(res, 400, {
        kind: 'invalid-settings',
        message: 'The request body is not valid JSON: expected {"method": string, "params": {...}}.',
      });
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      return sendError(res, 400, {
        kind: 'invalid-settings',
        message: 'The request body must be a JSON object: {"method": string, "params": {...}}.',
      });
    }
    const { method, params } = payload as { method?: unknown; params?: unknown };
    const { response, invalid } = await handleRequest(this.opts.engine, method, params, {
      onShutdown: this.opts.onShutdown,
    });
    sendJson(res, invalid ? 400 : statusOf(response), response);
  }

  private serveStatic(req: IncomingMessage, res: ServerResponse, urlPath: string): void {
    let rel: string;
    try {
      rel = decodeURIComponent(urlPath);
    } catch {
      return sendError(res, 400, { kind: 'invalid-settings', message: 'Malformed URL.' });
    }
    if (rel.includes('\0')) return sendError(res, 400, { kind: 'invalid-settings', message: 'Malformed URL.' });
    const root = this.rendererDir;
    const index = join(root, 'index.html');
    if (!existsSync(index)) return this.sendPage(req, res, 200, NOT_BUILT_PAGE);
    let file = resolve(root, '.' + (rel.endsWith('/') ? rel + 'index.html' : rel));
    if (file !== root && !file.startsWith(root + sep))
      return sendError(res, 404, { kind: 'unknown', message: 'Not found.' });
    let st = statOrNull(file);
    if (st?.isDirectory()) {
      file = join(file, 'index.html');
      st = statOrNull(file);
    }
    if (!st || !st.isFile()) {
      // A client-side route (no file extension): the app's page.
      if (extname(rel) === '') {
        file = index;
        st = statOrNull(file);
      }
      if (!st || !st.isFile()) return sendError(res, 404, { kind: 'unknown', message: 'Not found.' });
    }
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    res.statusCode = 200;
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', String(st.size));
    res.setHeader('Cache-Control', 'no-cache');
    if (type.startsWith('text/html')) res.setHeader('Content-Security-Policy', this.csp());
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  private csp(): string {
    const p = this.port;
    return [
      "default-src 'self'",
      `connect-src 'self' ws://127.0.0.1:${p} ws://localhost:${p}`,
      "img-src 'self' data:",
      "style-src 'self' 'unsafe-inline'",
      "script-src 'self'",
      "object-src 'none'",
      "base-uri 'self'",
      "frame-ancestors 'none'",
    ].join('; ');
  }

  private sendPage(req: IncomingMessage, res: ServerResponse, status: number, html: string): void {
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Content-Length', String(Buffer.byteLength(html)));
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Content-Security-Policy', this.csp());
    res.end(req.method === 'HEAD' ? undefined : html);
  }

  // ---------------------------------------------------------------- WebSocket

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://127.0.0.1');
    } catch {
      return rejectUpgrade(socket, 400, 'Bad Request');
    }
    if (url.pathname !== WEB_PATHS.events) return rejectUpgrade(socket, 404, 'Not Found');
    if (!this.hostOk(req) || !this.originOk(req)) return rejectUpgrade(socket, 403, 'Forbidden');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .find((s) => s.startsWith(WEB_TOKEN_PROTOCOL_PREFIX));
    const token = offered ? offered.slice(WEB_TOKEN_PROTOCOL_PREFIX.length) : url.searchParams.get('token');
    if (!this.tokenOk(token)) return rejectUpgrade(socket, 401, 'Unauthorized');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
  }

  private onSocket(ws: WebSocket): void {
    this.clients.add(ws);
    const tagged = ws as WebSocket & { lipsyncAlive?: boolean };
    tagged.lipsyncAlive = true;
    ws.on('pong', () => (tagged.lipsyncAlive = true));
    const send = (msg: WebEventMessage) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        ws.terminate();
        return;
      }
      ws.send(JSON.stringify(msg));
    };
    const offState = this.opts.engine.onState((data) => send({ type: 'state', data }));
    const offLog = this.opts.engine.onLog((data) => send({ type: 'log', data }));
    ws.on('close', () => {
      offState();
      offLog();
      this.clients.delete(ws);
    });
    ws.on('error', () => undefined);
    // Messages from the client are not part of the protocol (requests go to /api/call).
    ws.on('message', () => undefined);
    try {
      send({ type: 'state', data: this.opts.engine.status() });
    } catch {
      // settings unreadable this instant: the next change sends a snapshot
    }
  }
}

/** The web UI's address of the running daemon, or null when none serves one. */
export async function readWebInfo(dataDir: string): Promise<{ url: string; port: number; token: string } | null> {
  const files = webFiles(dataDir);
  try {
    const token = readFileSync(files.token, 'utf8').trim();
    const info = JSON.parse(readFileSync(files.info, 'utf8')) as { port?: unknown; pid?: unknown };
    if (typeof info.port !== 'number' || typeof info.pid !== 'number' || !/^[0-9a-f]{64}$/.test(token)) return null;
    try {
      process.kill(info.pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') return null; // the daemon died
    }
    return { url: `http://127.0.0.1:${info.port}/#token=${token}`, port: info.port, token };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- helpers

function statusOf(r: IpcResponse): number {
  if (!('error' in r)) return 200;
  switch (r.error.kind) {
    case 'invalid-settings':
    case 'invalid-remote':
      return 400;
    case 'pair-unknown':
      return 404;
    case 'pair-exists':
    case 'pair-overlap':
      return 409;
    case 'not-implemented':
      return 501;
    default:
      return 500;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(text)));
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}

function sendError(res: ServerResponse, status: number, error: ErrorInfo): void {
  sendJson(res, status, { error });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`The request body is larger than ${MAX_BODY_BYTES} bytes.`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

function statOrNull(file: string) {
  try {
    return statSync(file);
  } catch {
    return null;
  }
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lipsync</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>lipsync</h1>
<p>The lipsync daemon is running, but its user interface has not been built.</p>
<p>Run <code>npm run build:renderer</code> in the lipsync source folder, then reload this page.</p>
</body></html>
`;
