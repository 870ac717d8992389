import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IpcResponse } from '../../../shared/ipc.js';
import type { Engine } from '../engine.js';
import { handleRequest } from './dispatch.js';
import { bearer, tokenOk } from './web-guard.js';
import { sendError, sendJson } from './web-http.js';

/**
 * POST /api/call of the web server: `Authorization: Bearer TOKEN`, a JSON body
 * {method, params} (at most 1 MiB) → {result} | {error}, through the same dispatch as the
 * local socket; the error's kind chooses the HTTP status.
 */

const MAX_BODY_BYTES = 1024 * 1024;

export interface CallOptions {
  engine: Engine;
  token: string;
  onShutdown: () => void;
}

export async function handleCall(req: IncomingMessage, res: ServerResponse, opts: CallOptions): Promise<void> {
  res.setHeader('Cache-Control', 'no-store');
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'POST');
    return sendError(res, 405, { kind: 'invalid-settings', message: 'Use POST.' });
  }
  if (!tokenOk(bearer(req), opts.token)) {
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
  const { response, invalid } = await handleRequest(opts.engine, method, params, {
    onShutdown: opts.onShutdown,
  });
  sendJson(res, invalid ? 400 : statusOf(response), response);
}

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
