import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { WEB_PATHS, WEB_PROTOCOL, WEB_TOKEN_PROTOCOL_PREFIX, type WebEventMessage } from '../../../shared/ipc.js';
import type { Engine } from '../engine.js';
import { hostOk, originOk, tokenOk } from './web-guard.js';

/**
 * GET /api/events of the web server: a WebSocket that sends {type:'state'|'log', data} (a
 * state snapshot first). The token comes as subprotocol `lipsync.TOKEN` (offer `lipsync`
 * too, it is the one chosen) or as `?token=`. Clients are pinged; one that does not answer,
 * or cannot keep up, is dropped.
 */

/** A client that cannot keep up with events is dropped past this much unsent data. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const PING_INTERVAL_MS = 30_000;

type Tagged = WebSocket & { lipsyncAlive?: boolean };

export class WebEvents {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<WebSocket>();
  private pingTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly token: string,
    private readonly port: number,
  ) {
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

  /** Starts pinging the clients: one that has not answered the last ping is terminated. */
  startPings(): void {
    this.pingTimer = setInterval(() => {
      for (const ws of this.clients) {
        const alive = ws as Tagged;
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

  close(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const ws of this.clients) ws.terminate();
    this.clients.clear();
    this.wss.close();
  }

  /** The HTTP server's 'upgrade': checked (path, Host, Origin, token), then a WebSocket. */
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://127.0.0.1');
    } catch {
      return rejectUpgrade(socket, 400, 'Bad Request');
    }
    if (url.pathname !== WEB_PATHS.events) return rejectUpgrade(socket, 404, 'Not Found');
    if (!hostOk(req, this.port) || !originOk(req, this.port)) return rejectUpgrade(socket, 403, 'Forbidden');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .find((s) => s.startsWith(WEB_TOKEN_PROTOCOL_PREFIX));
    const token = offered ? offered.slice(WEB_TOKEN_PROTOCOL_PREFIX.length) : url.searchParams.get('token');
    if (!tokenOk(token, this.token)) return rejectUpgrade(socket, 401, 'Unauthorized');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
  }

  private onSocket(ws: WebSocket): void {
    this.clients.add(ws);
    const tagged = ws as Tagged;
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
    const offState = this.engine.onState((data) => send({ type: 'state', data }));
    const offLog = this.engine.onLog((data) => send({ type: 'log', data }));
    ws.on('close', () => {
      offState();
      offLog();
      this.clients.delete(ws);
    });
    ws.on('error', () => undefined);
    // Messages from the client are not part of the protocol (requests go to /api/call).
    ws.on('message', () => undefined);
    try {
      send({ type: 'state', data: this.engine.status() });
    } catch {
      // settings unreadable this instant: the next change sends a snapshot
    }
  }
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}
