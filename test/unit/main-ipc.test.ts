import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import {
  EVENT_CHANNELS as SHARED_EVENTS,
  OPEN_PATH_CHANNEL as SHARED_OPEN_PATH,
  PICK_FOLDER_CHANNEL as SHARED_PICK_FOLDER,
  SHOW_IN_FOLDER_CHANNEL as SHARED_SHOW_IN_FOLDER,
  REQUEST_CHANNEL as SHARED_REQUEST,
} from '../../shared/ipc.js';
import type { ValidRequest } from '../../shared/ipc.js';
import { handleRequest } from '../../electron/main/logic/ipc.js';
import { contentSecurityPolicy, isTrustedSender } from '../../electron/main/logic/trust.js';
import {
  BridgeError,
  createBridge,
  EVENT_CHANNELS,
  OPEN_PATH_CHANNEL,
  PICK_FOLDER_CHANNEL,
  SHOW_IN_FOLDER_CHANNEL,
  REQUEST_CHANNEL,
} from '../../electron/preload/bridge.js';
import { handlePickFolder } from '../../electron/main/logic/pick-folder.js';
import { toErrorInfo } from '../../electron/engine/errors.js';
import { LipsyncError } from '../../electron/engine/errors.js';

const INDEX = '/opt/lipsync/resources/app.asar/out/renderer/index.html';
const FILE = pathToFileURL(INDEX).href;
const DEV = 'http://localhost:5173';

describe('isTrustedSender', () => {
  const allowed = [FILE];

  it('accepts the app page, with any hash or query', () => {
    expect(isTrustedSender(FILE, allowed)).toBe(true);
    expect(isTrustedSender(`${FILE}#/conflicts`, allowed)).toBe(true);
    expect(isTrustedSender(`${FILE}?x=1`, allowed)).toBe(true);
  });

  it('refuses everything else', () => {
    for (const url of [
      undefined,
      null,
      '',
      'not a url',
      'about:blank',
      'data:text/html,<script>1</script>',
      'file:///etc/passwd',
      'file:///opt/lipsync/resources/app.asar/out/renderer/other.html',
      'file:///opt/lipsync/resources/app.asar/out/renderer/index.html.evil',
      'file://evilhost/opt/lipsync/resources/app.asar/out/renderer/index.html',
      'https://example.com/',
      DEV,
      'devtools://devtools/bundled/inspector.html',
      'javascript:alert(1)',
    ]) {
      expect(isTrustedSender(url, allowed), String(url)).toBe(false);
    }
  });

  it('normalises dot segments before comparing', () => {
    expect(isTrustedSender('file:///opt/lipsync/resources/app.asar/out/renderer/x/../index.html', allowed)).toBe(true);
    expect(isTrustedSender('file:///opt/lipsync/resources/app.asar/out/index.html', allowed)).toBe(false);
  });

  it('accepts the dev server origin only when it is allowed', () => {
    const withDev = [FILE, DEV];
    expect(isTrustedSender(`${DEV}/`, withDev)).toBe(true);
    expect(isTrustedSender(`${DEV}/src/main.tsx#x`, withDev)).toBe(true);
    expect(isTrustedSender('http://localhost:5174/', withDev)).toBe(false);
    expect(isTrustedSender('https://localhost:5173/', withDev)).toBe(false);
    expect(isTrustedSender('http://user:pw@localhost:5173/', withDev)).toBe(false);
  });
});

describe('contentSecurityPolicy', () => {
  it('allows no remote code, no eval, no framing', () => {
    const csp = contentSecurityPolicy();
    expect(csp).toContain(`default-src 'none'`);
    expect(csp).toContain(`script-src 'self'`);
    expect(csp).not.toMatch(/unsafe-eval|script-src[^;]*unsafe-inline|\*/);
    expect(csp).toContain(`frame-ancestors 'none'`);
    expect(contentSecurityPolicy(DEV)).toContain(`connect-src 'self' ${DEV} ws://localhost:5173`);
  });
});

describe('handleRequest (main side of REQUEST_CHANNEL)', () => {
  const allowed = [FILE];
  const ok = () => vi.fn(async (req: ValidRequest) => ({ ran: req.method, params: req.params }));

  it('runs a valid request with the parsed params', async () => {
    const dispatch = ok();
    const res = await handleRequest(
      FILE,
      allowed,
      { method: 'pause', params: { pair: 'docs', forMs: 60_000 } },
      dispatch,
    );
    expect(res).toEqual({ result: { ran: 'pause', params: { pair: 'docs', forMs: 60_000 } } });
    expect(dispatch).toHaveBeenCalledTimes(1);
  });

  it('treats missing params as {}', async () => {
    const dispatch = ok();
    expect(await handleRequest(FILE, allowed, { method: 'status' }, dispatch)).toEqual({
      result: { ran: 'status', params: {} },
    });
  });

  it('refuses an untrusted sender before looking at the payload', async () => {
    const dispatch = ok();
    for (const url of ['https://evil.example/', 'file:///tmp/x.html', undefined]) {
      const res = await handleRequest(url, allowed, { method: 'status', params: {} }, dispatch);
      expect(res).toMatchObject({ error: { kind: 'permission-denied' } });
    }
    expect(dispatch).not.toHaveBeenCalled();
  });

  it.each([
    ['not an object', 'status'],
    ['null', null],
    ['an array', ['status', {}]],
    ['no method', { params: {} }],
    ['a non-string method', { method: 42, params: {} }],
    ['an unknown method', { method: 'rm -rf', params: {} }],
    ['a prototype key as method', { method: '__proto__', params: {} }],
    ['a method inherited from Object', { method: 'toString', params: {} }],
    ['params of the wrong type', { method: 'pause', params: { forMs: 'soon' } }],
    ['a negative duration', { method: 'pause', params: { forMs: -5 } }],
    ['a missing required param', { method: 'remove', params: {} }],
    ['an empty pair id', { method: 'remove', params: { pair: '' } }],
    ['a bad enum', { method: 'resolve', params: { id: 1, keep: 'mine' } }],
    ['unknown keys in a strict patch', { method: 'update', params: { pair: 'p', patch: { paused: true } } }],
    ['params that are not an object', { method: 'add', params: 'x' }],
  ])('rejects %s with an error and runs nothing', async (_what, payload) => {
    const dispatch = ok();
    const res = await handleRequest(FILE, allowed, payload, dispatch);
    expect('error' in res).toBe(true);
    if ('error' in res) {
      expect(res.error.kind).toBe('invalid-settings');
      expect(res.error.message.length).toBeGreaterThan(0);
    }
    expect(dispatch).not.toHaveBeenCalled();
  });

  it('names the bad field', async () => {
    const res = await handleRequest(FILE, allowed, { method: 'pause', params: { forMs: 'soon' } }, ok());
    expect(res).toMatchObject({ error: { message: expect.stringContaining('forMs') } });
  });

  it('returns an engine failure as { error } with the engine ErrorInfo', async () => {
    const dispatch = vi.fn(async () => {
      throw new LipsyncError('pair-unknown', 'There is no folder pair "x".', { fix: 'See `lipsync list`.' });
    });
    const res = await handleRequest(FILE, allowed, { method: 'remove', params: { pair: 'x' } }, dispatch, toErrorInfo);
    expect(res).toEqual({
      error: { kind: 'pair-unknown', message: 'There is no folder pair "x".', fix: 'See `lipsync list`.' },
    });
  });
});

describe('preload bridge', () => {
  function fakeIpc(answer: unknown = { result: 'ok' }) {
    const listeners = new Map<string, Set<(e: unknown, ...a: unknown[]) => void>>();
    return {
      invoke: vi.fn(async (_channel: string, _payload: unknown) => answer),
      on: vi.fn((ch: string, l: (e: unknown, ...a: unknown[]) => void) => {
        if (!listeners.has(ch)) listeners.set(ch, new Set());
        listeners.get(ch)!.add(l);
      }),
      removeListener: vi.fn((ch: string, l: (e: unknown, ...a: unknown[]) => void) => listeners.get(ch)?.delete(l)),
      emit: (ch: string, payload: unknown) => listeners.get(ch)?.forEach((l) => l({ sender: 'secret' }, payload)),
      count: (ch: string) => listeners.get(ch)?.size ?? 0,
    };
  }

  it('uses the channel names of shared/ipc.ts', () => {
    expect(REQUEST_CHANNEL).toBe(SHARED_REQUEST);
    expect(EVENT_CHANNELS).toEqual(SHARED_EVENTS);
  });

  it('sends { method, params } on the request channel and returns the result', async () => {
    const ipc = fakeIpc({ result: { paused: ['docs'] } });
    const bridge = createBridge(ipc);
    await expect(bridge.call('pause', { pair: 'docs' })).resolves.toEqual({ paused: ['docs'] });
    expect(ipc.invoke).toHaveBeenCalledWith('lipsync:request', { method: 'pause', params: { pair: 'docs' } });
  });

  it('rejects with the ErrorInfo, also readable from the message alone (contextBridge keeps only that)', async () => {
    const info = { kind: 'auth-failed' as const, message: 'Refused.', fix: 'Add the key.' };
    const bridge = createBridge(fakeIpc({ error: info }));
    const err = await bridge.call('status', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BridgeError);
    expect((err as BridgeError).info).toEqual(info);
    expect(JSON.parse((err as Error).message)).toEqual(info);
  });

  it('relays events without the Electron event object, and unsubscribes', () => {
    const ipc = fakeIpc();
    const bridge = createBridge(ipc);
    const got: unknown[][] = [];
    const off = bridge.onState((...args: unknown[]) => got.push(args));
    const offLog = bridge.onLog(() => undefined);
    ipc.emit('lipsync:state', { pairs: [] });
    expect(got).toEqual([[{ pairs: [] }]]);
    off();
    off(); // idempotent
    ipc.emit('lipsync:state', { pairs: [1] });
    expect(got).toHaveLength(1);
    expect(ipc.count('lipsync:state')).toBe(0);
    expect(ipc.count('lipsync:log')).toBe(1);
    offLog();
    expect(ipc.count('lipsync:log')).toBe(0);
  });

  it('exposes only call, onState, onLog, openPath, showInFolder and the folder picker with its flag', () => {
    expect(Object.keys(createBridge(fakeIpc())).sort()).toEqual([
      'call',
      'canPickFolder',
      'onLog',
      'onState',
      'openPath',
      'pickFolder',
      'showInFolder',
    ]);
    expect(createBridge(fakeIpc()).canPickFolder).toBe(true);
  });

  it('pickFolder asks on the pick-folder channel: the path, null when cancelled, or the ErrorInfo', async () => {
    expect(PICK_FOLDER_CHANNEL).toBe(SHARED_PICK_FOLDER);
    const ipc = fakeIpc({ path: '/home/me/Sync' });
    await expect(createBridge(ipc).pickFolder()).resolves.toBe('/home/me/Sync');
    expect(ipc.invoke).toHaveBeenCalledWith('lipsync:pick-folder');
    await expect(createBridge(fakeIpc({ path: null })).pickFolder()).resolves.toBeNull();
    const info = { kind: 'unknown' as const, message: 'No dialog.' };
    const err = await createBridge(fakeIpc({ error: info }))
      .pickFolder()
      .catch((e: unknown) => e);
    expect((err as BridgeError).info).toEqual(info);
  });

  it('showInFolder sends the path on the show-in-folder channel and rejects with the ErrorInfo', async () => {
    expect(SHOW_IN_FOLDER_CHANNEL).toBe(SHARED_SHOW_IN_FOLDER);
    const ipc = fakeIpc({ ok: true });
    await expect(createBridge(ipc).showInFolder('/home/me/docs/a.txt')).resolves.toBeUndefined();
    expect(ipc.invoke).toHaveBeenCalledWith('lipsync:show-in-folder', '/home/me/docs/a.txt');
    const info = { kind: 'permission-denied' as const, message: 'Not inside a synced folder.' };
    const err = await createBridge(fakeIpc({ error: info }))
      .showInFolder('/etc/passwd')
      .catch((e: unknown) => e);
    expect((err as BridgeError).info).toEqual(info);
  });

  it('openPath sends the path on the open-path channel and rejects with the ErrorInfo', async () => {
    expect(OPEN_PATH_CHANNEL).toBe(SHARED_OPEN_PATH);
    const ipc = fakeIpc({ ok: true });
    await expect(createBridge(ipc).openPath('/home/me/docs/a.txt')).resolves.toBeUndefined();
    expect(ipc.invoke).toHaveBeenCalledWith('lipsync:open-path', '/home/me/docs/a.txt');
    const info = { kind: 'permission-denied' as const, message: 'Not inside a synced folder.' };
    const err = await createBridge(fakeIpc({ error: info }))
      .openPath('/etc/passwd')
      .catch((e: unknown) => e);
    expect((err as BridgeError).info).toEqual(info);
  });
});

describe('handlePickFolder (main side of PICK_FOLDER_CHANNEL)', () => {
  const allowed = [FILE];
  const dialog = (r: { canceled: boolean; filePaths: string[] }) => ({ showOpenDialog: vi.fn(async () => r) });

  it('answers the chosen folder, or null when cancelled', async () => {
    const d = dialog({ canceled: false, filePaths: ['/home/me/Sync'] });
    expect(await handlePickFolder(FILE, allowed, d)).toEqual({ path: '/home/me/Sync' });
    expect(d.showOpenDialog).toHaveBeenCalledWith({
      title: 'Folder to sync',
      properties: ['openDirectory', 'createDirectory'],
    });
    expect(await handlePickFolder(FILE, allowed, dialog({ canceled: true, filePaths: [] }))).toEqual({ path: null });
  });

  it('refuses another sender without opening a dialog, and turns a dialog failure into a fix', async () => {
    const d = dialog({ canceled: false, filePaths: ['/x'] });
    const r = await handlePickFolder('https://evil.example/', allowed, d);
    expect(r).toMatchObject({ error: { kind: 'permission-denied' } });
    expect(d.showOpenDialog).not.toHaveBeenCalled();
    const broken = {
      showOpenDialog: vi.fn(async () => {
        throw new Error('no display');
      }),
    };
    const e = await handlePickFolder(FILE, allowed, broken);
    expect(e).toEqual({
      error: {
        kind: 'unknown',
        message: 'The folder picker could not open: no display',
        fix: 'Type the folder path into the field instead.',
      },
    });
  });
});
