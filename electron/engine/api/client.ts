import { createConnection, type Socket } from 'node:net';
import type { ApiMethod, ApiParams, ApiProgressEvent, ApiResponse, ApiResults } from '../../../shared/api.js';
import { LipsyncError } from '../errors.js';
import { dataPaths } from '../paths.js';

/** A connection to a running daemon's local API. */
export class ApiClient {
  private nextId = 1;
  private buf = '';
  private pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; onProgress?: (e: ApiProgressEvent) => void }
  >();

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('close', () => {
      for (const p of this.pending.values())
        p.reject(new LipsyncError('daemon-unreachable', 'The lipsync daemon closed the connection.'));
      this.pending.clear();
    });
    sock.on('error', () => undefined);
  }

  /** Connect to the daemon, or null when none runs. */
  static connect(dataDir: string): Promise<ApiClient | null> {
    return new Promise((resolve) => {
      const s = createConnection(dataPaths(dataDir).socket);
      s.once('connect', () => resolve(new ApiClient(s)));
      s.once('error', () => resolve(null));
    });
  }

  call<M extends ApiMethod>(
    method: M,
    params: ApiParams<M>,
    onProgress?: (e: ApiProgressEvent) => void,
  ): Promise<ApiResults[M]> {
    const id = this.nextId++;
    return new Promise<ApiResults[M]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      this.sock.write(JSON.stringify({ id, method, params }) + '\n');
    });
  }

  close(): void {
    this.sock.end();
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: ApiResponse;
      try {
        msg = JSON.parse(line) as ApiResponse;
      } catch {
        continue;
      }
      const p = this.pending.get(msg.id);
      if (!p) continue;
      if ('event' in msg) p.onProgress?.(msg.data);
      else if ('error' in msg) {
        this.pending.delete(msg.id);
        p.reject(LipsyncError.fromInfo(msg.error));
      } else {
        this.pending.delete(msg.id);
        p.resolve(msg.result);
      }
    }
  }
}
