/**
 * `lipsync run --web`: the browser transport of the API (HTTP + WebSocket on 127.0.0.1),
 * driven against the real daemon process, syncing over the real sshd of the test harness.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { freePort, startSshd, type SshServer } from '../harness/sshd.js';
import { cli, makeCliEnv, requireBuild, startDaemon, waitFor, type CliEnv, type Daemon } from '../support/cli.js';
import type { PreviewExcludesResult } from '../../shared/api.js';
import type { PairSettings } from '../../shared/settings.js';
import type { EngineStatus, LogRecord } from '../../shared/status.js';
import { WebEventMessageSchema, type WebEventMessage } from '../../shared/ipc.js';

/** `lipsync run --web --port N`, started once the web UI address is printed. */
const startWebDaemon = (e: CliEnv, port: number): Promise<Daemon> =>
  startDaemon(e, {}, { args: ['--web', '--port', String(port)], readyText: 'web UI: http' });

let e: CliEnv;
let local: string;
let remote: string;
let port: number;
let token: string;
let base: string;
let daemon: Daemon;
let configFile: string;
let server: SshServer;

interface CallResult<T = unknown> {
  status: number;
  body: { result?: T; error?: { kind: string; message: string } };
}

async function call<T = unknown>(
  method: string,
  params?: unknown,
  headers: Record<string, string> = { Authorization: `Bearer ${token}` },
): Promise<CallResult<T>> {
  const res = await fetch(`${base}/api/call`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ method, params }),
  });
  return { status: res.status, body: (await res.json()) as CallResult<T>['body'] };
}

async function ok<T>(method: string, params?: unknown): Promise<T> {
  const r = await call<T>(method, params);
  if (r.status !== 200 || r.body.error) throw new Error(`${method}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.result as T;
}

/** A raw HTTP request (fetch does not let us set Host). */
function raw(
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Open the event socket; resolves when open, rejects with the HTTP status of a refusal. */
function openEvents(
  opts: { protocols?: string[]; query?: string; origin?: string } = {},
): Promise<{ ws: WebSocket; messages: WebEventMessage[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/events${opts.query ?? ''}`, opts.protocols, {
      origin: opts.origin,
    });
    const messages: WebEventMessage[] = [];
    ws.on('message', (d) => messages.push(WebEventMessageSchema.parse(JSON.parse(String(d)))));
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`refused: ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

const states = (m: WebEventMessage[]) => m.filter((x) => x.type === 'state').map((x) => x.data as EngineStatus);

async function waitIdle(): Promise<void> {
  let last: unknown;
  await waitFor(
    async () => {
      const st = await ok<EngineStatus>('status');
      last = st;
      return st.pairs.every((p) => p.state === 'idle');
    },
    120_000,
    () => `idle ${JSON.stringify(last)}\n${daemon.output()}`,
  );
}

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
  e = makeCliEnv({ debounceMs: 50, sshConfigFile: server.sshConfigFile });
  local = join(e.dir, 'local');
  remote = join(e.dir, 'server');
  mkdirSync(local);
  mkdirSync(remote);
  mkdirSync(join(local, 'build'));
  writeFileSync(join(local, 'build', 'out.o'), 'object');
  mkdirSync(join(local, 'src'));
  writeFileSync(join(local, 'src', 'main.c'), 'int main() {}');
  writeFileSync(join(local, 'src', 'debug.log'), 'log');
  writeFileSync(join(local, 'notes.txt'), 'notes');
  const r = await cli(e, ['add', local, `${server.alias}:${remote}`, '--id', 'docs']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  configFile = join(e.configDir, 'config.json');
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  daemon = await startWebDaemon(e, port);
  token = readFileSync(join(e.dataDir, 'web-token'), 'utf8').trim();
  await waitIdle();
});

afterAll(async () => {
  try {
    if (daemon) expect(await daemon.stop()).toBe(0);
    // The token does not outlive the daemon.
    if (e) expect(existsSync(join(e.dataDir, 'web-token'))).toBe(false);
  } finally {
    await server?.stop();
  }
});

describe('lipsync run --web: access control', () => {
  it('prints the address with a fresh 32-byte token kept private in the data dir', async () => {
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(e.dataDir, 'web-token')).mode & 0o777).toBe(0o600);
    expect(daemon.output()).toContain(`http://127.0.0.1:${port}/#token=${token}`);
    const w = await cli(e, ['web-url']);
    expect(w.code).toBe(0);
    expect(w.stdout.trim()).toBe(`http://127.0.0.1:${port}/#token=${token}`);
  });

  it('refuses calls without the token or with a wrong one (401)', async () => {
    expect((await call('status', {}, {})).status).toBe(401);
    expect((await call('status', {}, { Authorization: `Bearer ${'0'.repeat(64)}` })).status).toBe(401);
    expect((await call('status', {}, { Authorization: `Bearer ${token}x` })).status).toBe(401);
    expect((await call('status', {}, { Authorization: token })).status).toBe(401);
    // A refused call changes nothing.
    const before = readFileSync(configFile, 'utf8');
    expect((await call('pause', { pair: 'docs' }, {})).status).toBe(401);
    expect(readFileSync(configFile, 'utf8')).toBe(before);
  });

  it('refuses a foreign Host (DNS rebinding) and a foreign Origin (403)', async () => {
    const body = JSON.stringify({ method: 'status' });
    const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const good = await raw('/api/call', { method: 'POST', headers: { ...auth, Host: `localhost:${port}` }, body });
    expect(good.status).toBe(200);
    for (const host of [
      `evil.example:${port}`,
      'localhost',
      `127.0.0.1:${port + 1}`,
      `localhost.evil.example:${port}`,
    ]) {
      const r = await raw('/api/call', { method: 'POST', headers: { ...auth, Host: host }, body });
      expect(r.status, host).toBe(403);
    }
    expect((await raw('/', { headers: { Host: `evil.example:${port}` } })).status).toBe(403);
    for (const origin of ['http://evil.example', `https://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`, 'null']) {
      const r = await call('status', {}, { Authorization: `Bearer ${token}`, Origin: origin });
      expect(r.status, origin).toBe(403);
    }
    expect((await call('status', {}, { Authorization: `Bearer ${token}`, Origin: base })).status).toBe(200);
    expect(
      (await call('status', {}, { Authorization: `Bearer ${token}`, Origin: `http://localhost:${port}` })).status,
    ).toBe(200);
  });

  it('refuses malformed payloads with 400 naming the problem, and changes nothing', async () => {
    const before = readFileSync(configFile, 'utf8');
    const post = (body: string) =>
      fetch(`${base}/api/call`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body });

    let res = await post('{not json');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/not valid JSON/);

    res = await post('[1,2]');
    expect(res.status).toBe(400);

    let r = await call('dropTables', {});
    expect(r.status).toBe(400);
    expect(r.body.error!.message).toMatch(/method: unknown method "dropTables"/);

    r = await call('update', { pair: 'docs', patch: { excludes: ['*.tmp'], bwLimitKBps: -3 } });
    expect(r.status).toBe(400);
    expect(r.body.error!.message).toMatch(/patch\.bwLimitKBps/);

    r = await call('update', { pair: 'docs', patch: { local: '/etc' } });
    expect(r.status).toBe(400);
    expect(r.body.error!.message).toMatch(/patch: .*"local"/);

    r = await call('pause', { pair: 'docs', forMs: 'soon' });
    expect(r.status).toBe(400);
    expect(r.body.error!.message).toMatch(/forMs/);

    // Valid shape, invalid exclude pattern: refused by the engine before anything is written.
    r = await call('update', { pair: 'docs', patch: { excludes: ['ok', 'bad\\'], bwLimitKBps: 5 } });
    expect(r.status).toBe(400);
    expect(r.body.error!.message).toMatch(/excludes.*pattern 2/i);

    r = await call('remove', { pair: 'nope' });
    expect(r.status).toBe(404);
    expect(r.body.error!.kind).toBe('pair-unknown');

    expect(readFileSync(configFile, 'utf8')).toBe(before);
    expect((await ok<EngineStatus>('status')).pairs[0]!.state).not.toBe('paused');
  });

  it('serves the UI (or a page saying how to build it) with a strict CSP, and nothing outside it', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("img-src 'self' data:");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    if (!existsSync(new URL('../../out/renderer/index.html', import.meta.url)))
      expect(html).toContain('npm run build:renderer');
    for (const path of [
      '/../../../../etc/passwd',
      '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/..%2f..%2f..%2fetc%2fpasswd',
    ]) {
      const r = await raw(path);
      expect(r.text, path).not.toMatch(/root:/);
    }
    expect((await raw('/api/nothing')).status).toBe(404);
    expect((await raw('/api/call')).status).toBe(405);
  });
});

describe('lipsync run --web: API calls', () => {
  it('status, list, pause, resume, sync', async () => {
    const st = await ok<EngineStatus>('status');
    expect(st.pairs.map((p) => p.id)).toEqual(['docs']);
    expect(st.pairs[0]!.watcher).not.toBe('none');
    const list = await ok<PairSettings[]>('list');
    expect(list[0]!.local).toBe(local);

    expect(await ok('pause', { pair: 'docs' })).toEqual({ paused: ['docs'] });
    expect((await ok<EngineStatus>('status')).pairs[0]!.state).toBe('paused');
    writeFileSync(join(local, 'while-paused.txt'), 'p');
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(join(remote, 'while-paused.txt'))).toBe(false);
    expect(await ok('resume', {})).toEqual({ resumed: ['docs'] });
    await waitFor(() => existsSync(join(remote, 'while-paused.txt')), 10_000);

    writeFileSync(join(local, 'via-sync.txt'), 's');
    const s = await ok<{ results: { pair: string; ok: boolean }[] }>('sync', { pair: 'docs' });
    expect(s.results).toMatchObject([{ pair: 'docs', ok: true }]);
    expect(readFileSync(join(remote, 'via-sync.txt'), 'utf8')).toBe('s');
  });

  it('previewExcludes lists existing paths the patterns would exclude, without changing anything', async () => {
    const before = readFileSync(configFile, 'utf8');
    const p = await ok<PreviewExcludesResult>('previewExcludes', { pair: 'docs', excludes: ['build/', '*.log'] });
    expect(p.excluded.sort()).toEqual(['build', 'src/debug.log']);
    expect(p.count).toBe(2);
    expect(p.truncated).toBe(false);
    expect(readFileSync(configFile, 'utf8')).toBe(before);

    for (let i = 0; i < 250; i++) writeFileSync(join(local, 'build', `gen-${i}.o`), '');
    mkdirSync(join(local, 'many'));
    for (let i = 0; i < 250; i++) writeFileSync(join(local, 'many', `x-${i}.tmp`), '');
    const big = await ok<PreviewExcludesResult>('previewExcludes', { pair: 'docs', excludes: ['*.tmp'] });
    expect(big.excluded).toHaveLength(200);
    expect(big.count).toBe(200);
    expect(big.truncated).toBe(true);
    expect(big.excluded.every((x) => /^many\/x-\d+\.tmp$/.test(x))).toBe(true);
    await waitIdle();
  });

  it('update validates, writes the settings and applies new excludes', async () => {
    const next = await ok<PairSettings>('update', {
      pair: 'docs',
      patch: { excludes: ['*.tmp', '*.skip'], bwLimitKBps: 500, rescanIntervalSec: 600 },
    });
    expect(next).toMatchObject({ id: 'docs', excludes: ['*.tmp', '*.skip'], bwLimitKBps: 500, rescanIntervalSec: 600 });
    const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as { pairs: PairSettings[] };
    expect(cfg.pairs[0]).toMatchObject({ excludes: ['*.tmp', '*.skip'], bwLimitKBps: 500, rescanIntervalSec: 600 });
    await waitIdle();
    writeFileSync(join(local, 'ignored.skip'), 'no');
    writeFileSync(join(local, 'sent.txt'), 'yes');
    await waitFor(
      () => existsSync(join(remote, 'sent.txt')),
      10_000,
      () => daemon.output(),
    );
    await waitIdle();
    expect(existsSync(join(remote, 'ignored.skip'))).toBe(false);
    expect(await ok<PairSettings>('update', { pair: 'docs', patch: { bwLimitKBps: 0 } })).toMatchObject({
      bwLimitKBps: 0,
      excludes: ['*.tmp', '*.skip'],
    });
    // A new direction restarts the pair (the server's change feed follows the direction).
    await ok('update', { pair: 'docs', patch: { direction: 'send-only' } });
    await waitFor(async () => {
      const p = (await ok<EngineStatus>('status')).pairs[0]!;
      return p.direction === 'send-only' && p.remoteWatcher === 'none' && p.state === 'idle';
    }, 20_000);
    await ok('update', { pair: 'docs', patch: { direction: 'two-way' } });
    await waitFor(async () => {
      const p = (await ok<EngineStatus>('status')).pairs[0]!;
      return p.direction === 'two-way' && p.remoteWatcher === 'inotify' && p.state === 'idle';
    }, 20_000);
  });

  it('recent lists file changes and sync errors, newest last', async () => {
    const rec = await ok<LogRecord[]>('recent', { pair: 'docs', limit: 500 });
    expect(rec.length).toBeGreaterThan(0);
    expect(rec.every((r) => ['push', 'pull', 'delete', 'rename', 'conflict', 'error'].includes(r.event))).toBe(true);
    for (let i = 1; i < rec.length; i++) expect(rec[i]!.t).toBeGreaterThanOrEqual(rec[i - 1]!.t);
    expect(rec.flatMap((r) => r.paths ?? [])).toContain('sent.txt');
    const two = await ok<LogRecord[]>('recent', { limit: 2 });
    expect(two).toEqual(rec.slice(-2));
    expect((await call('recent', { pair: 'nope' })).status).toBe(404);
  });

  it("the setup wizard methods reach electron/engine/setup/ with the settings' ssh config", async () => {
    expect(Array.isArray(await ok('listKeys', {}))).toBe(true);
    const b = await ok<{ path: string; dirs: string[] }>('browseRemote', { host: server.alias, path: remote });
    expect(b.path).toBe(remote);
    expect(b.dirs).toEqual(expect.arrayContaining(['build', 'src']));
    const t = await ok<{ reachable: boolean; auth: string }>('testConnection', { host: server.alias });
    expect(t).toMatchObject({ reachable: true, auth: 'ok' });
    const bad = await call('installKey', { host: server.alias, user: 'me', publicKeyPath: '/x.pub' });
    expect(bad.status).toBe(400);
    expect(bad.body.error!.message).toMatch(/password/);
  });

  it('add with an unknown initialSync is refused, and nothing is added', async () => {
    const other = join(e.dir, 'other');
    mkdirSync(other);
    const r = await call('add', { local: other, remote: join(e.dir, 'other-server'), initialSync: 'overwrite' });
    expect(r.status).toBe(400);
    expect(r.body.error!.message).toMatch(/initialSync/);
    expect((await ok<PairSettings[]>('list')).map((p) => p.id)).toEqual(['docs']);
  });
});

describe('lipsync run --web: events', () => {
  it('refuses a WebSocket without the right token, or from another origin', async () => {
    await expect(openEvents()).rejects.toMatchObject({ status: 401 });
    await expect(openEvents({ protocols: ['lipsync', `lipsync.${'f'.repeat(64)}`] })).rejects.toMatchObject({
      status: 401,
    });
    await expect(openEvents({ query: '?token=wrong' })).rejects.toMatchObject({ status: 401 });
    await expect(
      openEvents({ protocols: ['lipsync', `lipsync.${token}`], origin: 'http://evil.example' }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it('with the token: a state snapshot on connect, and a new one after a file change', async () => {
    const { ws, messages } = await openEvents({ protocols: ['lipsync', `lipsync.${token}`], origin: base });
    try {
      expect(ws.protocol).toBe('lipsync');
      await waitFor(() => states(messages).length >= 1, 5000);
      expect(messages[0]!.type).toBe('state');
      expect(states(messages)[0]!.pairs[0]!.id).toBe('docs');
      const n = messages.length;
      writeFileSync(join(local, 'event-trigger.txt'), 'hello');
      await waitFor(
        () => states(messages).length > 1 && messages.length > n,
        10_000,
        () => 'a new state',
      );
      await waitFor(
        () =>
          messages.some(
            (m) => m.type === 'log' && m.data.event === 'push' && m.data.paths?.includes('event-trigger.txt'),
          ),
        10_000,
        () => `a push log record\n${JSON.stringify(messages.slice(-5))}`,
      );
    } finally {
      ws.close();
    }
    // The query-string token works too.
    const q = await openEvents({ query: `?token=${token}` });
    await waitFor(() => states(q.messages).length >= 1, 5000);
    q.ws.close();
  });

  it('coalesces state snapshots: 200 quick file changes give far fewer than 200 messages', async () => {
    await waitIdle();
    const { ws, messages } = await openEvents({ protocols: ['lipsync', `lipsync.${token}`] });
    try {
      await waitFor(() => states(messages).length >= 1, 5000);
      const start = messages.length;
      mkdirSync(join(local, 'burst'));
      for (let i = 0; i < 200; i++) writeFileSync(join(local, 'burst', `f-${i}.txt`), `file ${i}`);
      await new Promise((r) => setTimeout(r, 2000));
      const snapshots = messages.slice(start).filter((m) => m.type === 'state');
      expect(snapshots.length).toBeGreaterThan(0);
      expect(snapshots.length).toBeLessThanOrEqual(30);
      await waitFor(() => existsSync(join(remote, 'burst', 'f-199.txt')), 20_000);
    } finally {
      ws.close();
    }
  });
});

describe('lipsync run --web: port in use', () => {
  it('says so and suggests --port', async () => {
    const busy = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(busy, '127.0.0.1', () => r()));
    try {
      const e2 = makeCliEnv();
      const r = await cli(e2, ['run', '--web', '--port', String(busy)], 30_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`Port ${busy} .*already in use`));
      expect(r.stderr).toMatch(/--port/);
      expect(existsSync(join(e2.dataDir, 'daemon.pid'))).toBe(false);
    } finally {
      blocker.close();
    }
  });
});
