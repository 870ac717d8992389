import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendError } from './web-http.js';

/**
 * GET/HEAD of the web server's other paths: the files of the built renderer (out/renderer/),
 * never outside it; a client-side route (no extension) gets index.html, an HTML page its
 * Content-Security-Policy; a page that says how to build it when there is no build. No token
 * needed: these files hold no data.
 */

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

/**
 * The built renderer, out/renderer/, seen from this module: compiled by tsc
 * (out/electron/engine/api/web-static.js) or bundled with the CLI (out/cli/web.mjs, scripts/bundle-cli.mjs).
 */
export function defaultRendererDir(moduleUrl = import.meta.url): string {
  const dirs = ['../../../renderer/', '../renderer/'].map((rel) => fileURLToPath(new URL(rel, moduleUrl)));
  return dirs.find((d) => existsSync(join(d, 'index.html'))) ?? dirs[0]!;
}

/** Answers a GET or HEAD of `urlPath` from `root` (an absolute, resolved directory). */
export function serveStatic(
  req: IncomingMessage,
  res: ServerResponse,
  urlPath: string,
  root: string,
  port: number,
): void {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return sendError(res, 400, { kind: 'invalid-settings', message: 'Malformed URL.' });
  }
  if (rel.includes('\0')) return sendError(res, 400, { kind: 'invalid-settings', message: 'Malformed URL.' });
  const index = join(root, 'index.html');
  if (!existsSync(index)) return sendPage(req, res, 200, NOT_BUILT_PAGE, port);
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
  if (type.startsWith('text/html')) res.setHeader('Content-Security-Policy', csp(port));
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

function csp(port: number): string {
  return [
    "default-src 'self'",
    `connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`,
    "img-src 'self' data:",
    "style-src 'self' 'unsafe-inline'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sendPage(req: IncomingMessage, res: ServerResponse, status: number, html: string, port: number): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(html)));
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Content-Security-Policy', csp(port));
  res.end(req.method === 'HEAD' ? undefined : html);
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
