import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { WEB_PATHS } from '../../../shared/ipc.js';
import type { Engine } from '../engine.js';
import { LipsyncError } from '../errors.js';
import { handleCall } from './web-call.js';
import { WebEvents } from './web-events.js';
import { removeWebFiles, writeWebFiles } from './web-files.js';
import { hostOk, originOk } from './web-guard.js';
import { sendError } from './web-http.js';
import { defaultRendererDir, serveStatic } from './web-static.js';

export { readWebInfo, webFiles } from './web-files.js';
export { defaultRendererDir } from './web-static.js';

/**
 * `lipsync run --web`: the lipsync UI and its API for a browser on this computer.
 *
 *   GET  /...            the built renderer (out/renderer/), no token needed (it holds no data)
 *                        (web-static.ts)
 *   POST /api/call       {method, params} → {result} | {error}; `Authorization: Bearer TOKEN`
 *                        (web-call.ts)
 *   GET  /api/events     WebSocket: {type:'state'|'log', data}; token as subprotocol
 *                        `lipsync.TOKEN` (offer `lipsync` too, it is the one chosen) or `?token=`
 *                        (web-events.ts)
 *
 * Listens on 127.0.0.1 only. Every request must name this server in its Host header
 * (127.0.0.1:PORT or localhost:PORT: defeats DNS rebinding) and, when it has an Origin,
 * come from this origin (defeats cross-site requests) (web-guard.ts). The token is random per
 * daemon start, kept in <dataDir>/web-token (0600) for `lipsync web-url` (web-files.ts).
 * This file: the server's life (listen, close) and which path goes where.
 */

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
  private readonly events: WebEvents;
  private readonly rendererDir: string;

  constructor(private readonly opts: WebServerOptions) {
    this.rendererDir = resolve(opts.rendererDir ?? defaultRendererDir());
    this.events = new WebEvents(opts.engine, this.token, opts.port);
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
    server.on('upgrade', (req, socket, head) => this.events.onUpgrade(req, socket, head));
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
    writeWebFiles(this.opts.dataDir, this.token, this.port);
    this.events.startPings();
  }

  async close(): Promise<void> {
    this.events.close();
    removeWebFiles(this.opts.dataDir, this.token);
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    if (!hostOk(req, this.port))
      return sendError(res, 403, {
        kind: 'permission-denied',
        message: `Forbidden: the Host header must be 127.0.0.1:${this.port} or localhost:${this.port}.`,
      });
    if (!originOk(req, this.port))
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
    if (path === WEB_PATHS.call)
      return handleCall(req, res, { engine: this.opts.engine, token: this.token, onShutdown: this.opts.onShutdown });
    if (path === WEB_PATHS.events)
      return sendError(res, 426, { kind: 'invalid-settings', message: 'This is a WebSocket endpoint.' });
    if (path.startsWith('/api/')) return sendError(res, 404, { kind: 'unknown', message: 'No such API endpoint.' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendError(res, 405, { kind: 'invalid-settings', message: 'Method not allowed.' });
    }
    serveStatic(req, res, path, this.rendererDir, this.port);
  }
}
