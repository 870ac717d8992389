import type { ServerResponse } from 'node:http';
import type { ErrorInfo } from '../../../shared/errors.js';

/** The web server's JSON answers: a body, or `{error}` with its HTTP status. Never cached. */

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(text)));
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, error: ErrorInfo): void {
  sendJson(res, status, { error });
}
