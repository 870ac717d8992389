import { describe, expect, it } from 'vitest';
import { ApiParamSchemas, type ApiMethod, type ApiResults } from '../../shared/api.js';
import {
  EVENT_CHANNELS,
  EVENT_SCHEMAS,
  IpcError,
  REQUEST_CHANNEL,
  WebEventMessageSchema,
  unwrapResponse,
  validateRequest,
} from '../../shared/ipc.js';
import type { EngineStatus, LogRecord } from '../../shared/status.js';

// A compile-time list: adding a method to ApiParamSchemas without a result type (or the
// reverse) fails type checking here.
const METHODS = {
  status: true,
  list: true,
  add: true,
  remove: true,
  pause: true,
  resume: true,
  sync: true,
  log: true,
  shutdown: true,
  conflicts: true,
  resolve: true,
  confirm: true,
  update: true,
  previewExcludes: true,
  previewInitialSync: true,
  recent: true,
  versions: true,
  restore: true,
  testConnection: true,
  trustHostKey: true,
  listKeys: true,
  generateKey: true,
  installKey: true,
  browseRemote: true,
  readKey: true,
  checkLocalFolder: true,
} satisfies Record<ApiMethod, true> & Record<keyof ApiResults, true>;

const statusSample: EngineStatus = {
  pid: 1234,
  version: '0.1.0',
  startedAt: 1_700_000_000_000,
  pairs: [
    {
      id: 'docs',
      local: '/home/me/docs',
      remote: 'me@server:/srv/docs',
      direction: 'two-way',
      state: 'syncing',
      pausedUntil: null,
      watcher: 'inotifywait',
      remoteWatcher: 'inotify',
      conflicts: 1,
      entries: 42,
      pending: -1,
      lastSyncAt: 1_700_000_001_000,
      progress: { filesDone: 3, filesTotal: 10, bytesDone: 12345, rateBps: 1000 },
      lastError: { kind: 'host-unreachable', message: 'The server did not answer.', fix: 'Check the network.' },
      warnings: [{ kind: 'vanished', message: 'A file vanished.', files: ['a.txt'] }],
    },
    {
      id: 'photos',
      local: '/home/me/photos',
      remote: '/mnt/backup/photos',
      direction: 'send-only',
      state: 'paused',
      reason: { kind: 'cancelled', message: 'Paused until resumed.' },
      pausedUntil: 1_700_000_100_000,
      watcher: 'parcel',
      remoteWatcher: 'none',
      conflicts: 0,
      entries: 0,
      pending: 0,
      lastSyncAt: null,
      warnings: [],
    },
  ],
};

const logSamples: LogRecord[] = [
  { t: 1, pair: 'docs', level: 'info', event: 'push', msg: 'sent 2 files', paths: ['a', 'b'], bytes: 10 },
  { t: 2, pair: 'docs', level: 'info', event: 'rename', msg: 'moved a → c', from: 'a', to: 'c' },
  { t: 3, pair: 'docs', level: 'error', event: 'error', msg: 'failed' },
];

describe('the IPC contract', () => {
  it('names its channels', () => {
    expect(REQUEST_CHANNEL).toBe('lipsync:request');
    expect(EVENT_CHANNELS).toEqual({ state: 'lipsync:state', log: 'lipsync:log' });
  });

  it('has a params schema for every API method', () => {
    expect(Object.keys(ApiParamSchemas).sort()).toEqual(Object.keys(METHODS).sort());
    for (const m of Object.keys(ApiParamSchemas) as ApiMethod[]) {
      expect(typeof ApiParamSchemas[m].safeParse).toBe('function');
    }
  });

  it('accepts valid requests and returns the parsed params', () => {
    expect(validateRequest('status', undefined)).toEqual({ ok: true, method: 'status', params: {} });
    const r = validateRequest('update', { pair: 'docs', patch: { excludes: ['*.log'], bwLimitKBps: 100 } });
    expect(r).toEqual({
      ok: true,
      method: 'update',
      params: { pair: 'docs', patch: { excludes: ['*.log'], bwLimitKBps: 100 } },
    });
    expect(validateRequest('previewExcludes', { pair: 'docs', excludes: [] }).ok).toBe(true);
    expect(validateRequest('previewInitialSync', { local: '/a', remote: 'h:/b' }).ok).toBe(true);
    expect(validateRequest('previewInitialSync', { local: '', remote: 'h:/b' }).ok).toBe(false);
    expect(validateRequest('recent', { limit: 20 }).ok).toBe(true);
    expect(validateRequest('add', { local: '/a', remote: 'h:/b', initialSync: 'merge' }).ok).toBe(true);
    expect(validateRequest('add', { local: '/a', remote: 'h:/b', compression: 'on' }).ok).toBe(true);
    expect(validateRequest('update', { pair: 'docs', patch: { compression: 'off' } }).ok).toBe(true);
    expect(validateRequest('browseRemote', { host: 'server' })).toEqual({
      ok: true,
      method: 'browseRemote',
      params: { host: 'server', path: '~' },
    });
    expect(validateRequest('listKeys', undefined).ok).toBe(true);
  });

  it('rejects unknown methods', () => {
    for (const m of ['nope', '__proto__', 'constructor', 'toString', '', 42, null, undefined]) {
      const r = validateRequest(m, {});
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.kind).toBe('invalid-settings');
        expect(r.error.message).toMatch(/^method: /);
      }
    }
  });

  it('rejects malformed params with messages naming the field', () => {
    const cases: [string, unknown, RegExp][] = [
      ['remove', {}, /^pair: /m],
      ['remove', { pair: 7 }, /^pair: /m],
      ['pause', { forMs: -5 }, /^forMs: /m],
      ['resolve', { id: 1, keep: 'mine' }, /^keep: /m],
      ['update', { pair: 'docs', patch: { bwLimitKBps: -1 } }, /^patch\.bwLimitKBps: /m],
      ['update', { pair: 'docs', patch: { direction: 'sideways' } }, /^patch\.direction: /m],
      ['update', { pair: 'docs', patch: { compression: 'zstd' } }, /^patch\.compression: /m],
      ['add', { local: '/a', remote: 'h:/b', compression: true }, /^compression: /m],
      ['update', { pair: 'docs', patch: { local: '/elsewhere' } }, /^patch: .*local/m],
      ['update', { pair: 'docs' }, /^patch: /m],
      ['previewExcludes', { pair: 'docs', excludes: [1] }, /^excludes\.0: /m],
      ['recent', { limit: 0 }, /^limit: /m],
      ['add', { local: '/a', remote: 'h:/b', initialSync: 'overwrite' }, /^initialSync: /m],
      ['status', 'not an object', /^\(params\): /m],
      ['testConnection', { host: 'h', port: 70000 }, /^port: /m],
      ['installKey', { host: 'h', user: 'me', publicKeyPath: '/k.pub' }, /^password: /m],
    ];
    for (const [method, params, re] of cases) {
      const r = validateRequest(method, params);
      expect(r.ok, `${method} ${JSON.stringify(params)}`).toBe(false);
      if (!r.ok) {
        expect(r.error.message).toContain(`Invalid parameters for ${method}`);
        expect(r.error.message).toMatch(re);
      }
    }
  });

  it('event schemas parse real samples and refuse wrong ones', () => {
    expect(EVENT_SCHEMAS.state.parse(statusSample)).toEqual(statusSample);
    for (const r of logSamples) expect(EVENT_SCHEMAS.log.parse(r)).toEqual(r);
    expect(WebEventMessageSchema.parse({ type: 'state', data: statusSample })).toEqual({
      type: 'state',
      data: statusSample,
    });
    expect(WebEventMessageSchema.safeParse({ type: 'log', data: statusSample }).success).toBe(false);
    expect(EVENT_SCHEMAS.state.safeParse({ ...statusSample, pairs: [{ id: 'x' }] }).success).toBe(false);
    expect(EVENT_SCHEMAS.log.safeParse({ ...logSamples[0], event: 'explode' }).success).toBe(false);
  });

  it('unwraps responses into results or IpcErrors', () => {
    expect(unwrapResponse<'list'>({ result: [] })).toEqual([]);
    try {
      unwrapResponse({ error: { kind: 'pair-unknown', message: 'no pair' } });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(IpcError);
      expect((e as IpcError).info.kind).toBe('pair-unknown');
      expect((e as IpcError).message).toBe('no pair');
    }
  });
});
