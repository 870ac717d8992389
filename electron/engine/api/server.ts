import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ApiRequest, ApiResponse } from '../../../shared/api.js';
import type { Engine } from '../engine.js';
import { LipsyncError } from '../errors.js';
import { handleRequest } from './dispatch.js';
import { dataPaths } from '../paths.js';

/**
 * The local API: newline-delimited JSON over a Unix socket in the data dir
 * (directory 0700, socket 0600), so only this user can talk to the engine.
 * Every request is validated (shared/ipc.ts `validateRequest`) and run by dispatch.ts,
 * the same code the web transport uses.
 */
export class ApiServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly engine: Engine,
    private readonly dataDir: string,
    private readonly onShutdown: () => void,
  ) {}

  async listen(): Promise<void> {
    const { socket } = dataPaths(this.dataDir);
    rmSync(socket, { force: true });
    const server = createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    chmodSync(socket, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    rmSync(dataPaths(this.dataDir).socket, { force: true });
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 1_000_000) {
        sock.destroy();
        return;
      }
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) void this.handle(sock, line);
      }
    });
  }

  private send(sock: Socket, msg: ApiResponse): void {
    if (!sock.destroyed) sock.write(JSON.stringify(msg) + '\n');
  }

  private async handle(sock: Socket, line: string): Promise<void> {
    let req: ApiRequest;
    try {
      req = JSON.parse(line) as ApiRequest;
      if (typeof req !== 'object' || req === null || typeof req.id !== 'number' || typeof req.method !== 'string')
        throw new Error();
    } catch {
      this.send(sock, {
        id: -1,
        error: {
          kind: 'invalid-settings',
          message: 'Malformed request: expected {"id": number, "method": string, "params": {...}}.',
        },
      });
      return;
    }
    const { response } = await handleRequest(this.engine, req.method, req.params, {
      onProgress: (data) => this.send(sock, { id: req.id, event: 'progress', data }),
      onShutdown: this.onShutdown,
    });
    this.send(sock, { id: req.id, ...response });
  }
}

/**
 * One engine per user: a pid file taken with O_EXCL. A pid file whose process
 * is gone is stale and taken over.
 */
export function acquireDaemonLock(dataDir: string): { release: () => void } {
  const { pidFile } = dataPaths(dataDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(pidFile, String(process.pid), { flag: 'wx', mode: 0o600 });
      return { release: () => releaseIfOurs(pidFile) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new LipsyncError('daemon-running', `lipsync is already running (pid ${pid}) for this user.`, {
          fix: 'Use `lipsync status`, or stop it first (`lipsync stop`, or Ctrl-C in its terminal).',
        });
      }
      rmSync(pidFile, { force: true });
    }
  }
  throw new LipsyncError('daemon-running', 'Could not take the daemon lock.');
}

function releaseIfOurs(pidFile: string): void {
  try {
    if (existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8').trim()) === process.pid) rmSync(pidFile);
  } catch {
    // already gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when a daemon answers on the socket. */
export function daemonAnswers(dataDir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(dataPaths(dataDir).socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
