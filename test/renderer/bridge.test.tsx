// @vitest-environment jsdom
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../renderer/src/App.js';
import { createWebBridge, isWebBridge, pickBridge, tokenFromHash } from '../../renderer/src/bridge.js';
import { ApiError, toErrorInfo } from '../../renderer/src/api.js';
import type { EngineStatus } from '../../shared/status.js';

class FakeWS {
  static all: FakeWS[] = [];
  onopen: (() => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  constructor(
    public url: string,
    public protocols: string[],
  ) {
    FakeWS.all.push(this);
  }
  close() {
    this.onclose?.();
  }
}

afterEach(() => {
  FakeWS.all = [];
});

describe('web bridge', () => {
  it('reads the token from the hash', () => {
    expect(tokenFromHash('#token=abc123')).toBe('abc123');
    expect(tokenFromHash('#x=1&token=t')).toBe('t');
    expect(tokenFromHash('')).toBeNull();
  });

  it('posts calls with the bearer token and maps {error} to ApiError', async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      seen.push({ url, init });
      const body = JSON.parse(String(init.body)) as { method: string };
      if (body.method === 'status') return new Response(JSON.stringify({ result: { pairs: [] } }), { status: 200 });
      return new Response(
        JSON.stringify({ error: { kind: 'pair-unknown', message: 'No pair x.', fix: 'List pairs.' } }),
        {
          status: 400,
        },
      );
    }) as unknown as typeof fetch;
    const b = createWebBridge({
      origin: 'http://127.0.0.1:9',
      token: 'tok',
      fetchImpl,
      WebSocketImpl: FakeWS as unknown as typeof WebSocket,
    });
    expect(await b.call('status', {})).toEqual({ pairs: [] });
    expect(seen[0]?.url).toBe('http://127.0.0.1:9/api/call');
    expect((seen[0]?.init.headers as Record<string, string>).Authorization).toBe('Bearer tok');
    const err = await b.call('remove', { pair: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(toErrorInfo(err)).toMatchObject({ kind: 'pair-unknown', fix: 'List pairs.' });
    b.close();
  });

  it('pushes state and log from the socket and reconnects when it drops', async () => {
    const b = createWebBridge({
      origin: 'http://127.0.0.1:9',
      token: 'tok',
      reconnectMinMs: 5,
      WebSocketImpl: FakeWS as unknown as typeof WebSocket,
    });
    const conns: string[] = [];
    b.onConnection((c) => conns.push(c));
    const states: EngineStatus[] = [];
    const logs: unknown[] = [];
    b.onState((s) => states.push(s));
    b.onLog((r) => logs.push(r));
    const ws = FakeWS.all[0] as FakeWS;
    expect(ws.url).toBe('ws://127.0.0.1:9/api/events');
    expect(ws.protocols).toEqual(['lipsync', 'lipsync.tok']);
    ws.onopen?.();
    ws.onmessage?.({ data: JSON.stringify({ type: 'state', data: { pairs: [] } }) });
    ws.onmessage?.({ data: JSON.stringify({ type: 'log', data: { event: 'push' } }) });
    ws.onmessage?.({ data: 'not json' });
    expect(states).toHaveLength(1);
    expect(logs).toHaveLength(1);
    ws.onclose?.();
    await new Promise((r) => setTimeout(r, 30));
    expect(FakeWS.all).toHaveLength(2);
    FakeWS.all[1]?.onopen?.();
    expect(conns).toEqual(['connecting', 'open', 'closed', 'connecting', 'open']);
    b.close();
  });

  it('prefers window.lipsync (Electron preload) and explains a missing token', async () => {
    const preload = { call: async () => 1, onState: () => () => {}, onLog: () => () => {} };
    expect(pickBridge({ lipsync: preload, location: { hash: '', origin: 'x' } } as unknown as Window)).toBe(preload);
    const none = pickBridge({ location: { hash: '', origin: 'http://x' } } as unknown as Window);
    const e = await none.call('status', {}).catch((x: unknown) => x);
    expect(toErrorInfo(e).message).toMatch(/without its access token/);
  });

  it('reconnects with the new token when a new link is pasted in the same tab', async () => {
    const auth: string[] = [];
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      auth.push((init.headers as Record<string, string>).Authorization ?? '');
      return new Response(JSON.stringify({ result: { pairs: [] } }), { status: 200 });
    }) as unknown as typeof fetch;
    const listeners: Record<string, (() => void)[]> = {};
    const win = {
      location: { hash: '#token=old', origin: 'http://127.0.0.1:9', reload: () => undefined },
      addEventListener: (ev: string, fn: () => void) => (listeners[ev] ??= []).push(fn),
    };
    const b = pickBridge(win as unknown as Window, { fetchImpl, WebSocketImpl: FakeWS as unknown as typeof WebSocket });
    expect(FakeWS.all[0]?.protocols).toEqual(['lipsync', 'lipsync.old']);
    // The daemon restarted: its socket is gone, the page keeps reconnecting with the old token…
    FakeWS.all[0]?.onclose?.();
    // …until the new address is pasted: only the hash changes, no page load.
    win.location.hash = '#token=new';
    for (const fn of listeners.hashchange ?? []) fn();
    const last = FakeWS.all[FakeWS.all.length - 1] as FakeWS;
    expect(last.protocols).toEqual(['lipsync', 'lipsync.new']);
    const conns: string[] = [];
    if (isWebBridge(b)) b.onConnection((c) => conns.push(c));
    last.onopen?.();
    expect(conns).toEqual(['connecting', 'open']);
    await b.call('status', {});
    expect(auth[auth.length - 1]).toBe('Bearer new');
    // The old reconnect timer was cancelled: no other socket is opened afterwards.
    const n = FakeWS.all.length;
    await new Promise((r) => setTimeout(r, 700));
    expect(FakeWS.all).toHaveLength(n);
    // Back (popstate) to the old link: the old token again.
    win.location.hash = '#token=old';
    for (const fn of listeners.popstate ?? []) fn();
    expect(FakeWS.all[FakeWS.all.length - 1]?.protocols).toEqual(['lipsync', 'lipsync.old']);
    if (isWebBridge(b)) b.close();
  });

  it('says when the service refuses the token instead of "Reconnecting…" forever', async () => {
    let status = 401;
    const fetchImpl = (async () =>
      new Response(JSON.stringify({ error: { kind: 'auth-failed', message: 'Bad token.' } }), {
        status,
      })) as unknown as typeof fetch;
    const b = createWebBridge({
      origin: 'http://127.0.0.1:9',
      token: 'old',
      reconnectMinMs: 5,
      fetchImpl,
      WebSocketImpl: FakeWS as unknown as typeof WebSocket,
    });
    const conns: string[] = [];
    b.onConnection((c) => conns.push(c));
    FakeWS.all[0]?.onclose?.();
    await waitFor(() => expect(conns[conns.length - 1]).toBe('unauthorized'));
    // Retries keep the news (no flicker back to "closed") …
    await new Promise((r) => setTimeout(r, 20));
    FakeWS.all[FakeWS.all.length - 1]?.onclose?.();
    await new Promise((r) => setTimeout(r, 20));
    expect(conns[conns.length - 1]).toBe('unauthorized');
    // … until a new token opens a socket.
    status = 200;
    b.setToken('new');
    FakeWS.all[FakeWS.all.length - 1]?.onopen?.();
    expect(conns.slice(-2)).toEqual(['connecting', 'open']);
    b.close();

    // The app's banner says what to do, with the command as code.
    const b2 = createWebBridge({
      origin: 'http://127.0.0.1:9',
      token: 'old',
      reconnectMinMs: 5,
      fetchImpl: (async () => new Response('{}', { status: 401 })) as unknown as typeof fetch,
      WebSocketImpl: FakeWS as unknown as typeof WebSocket,
    });
    render(<App bridge={b2} />);
    FakeWS.all[FakeWS.all.length - 1]?.onclose?.();
    const banner = await screen.findByText(/no longer accepts this page's address/);
    expect(banner.closest('.banner')?.querySelector('code')?.textContent).toBe('lipsync web-url');
    expect(screen.queryByText(/Reconnecting/)).toBeNull();
    b2.close();
    cleanup();
  });

  it('a page opened without a token reloads when a link with one is pasted', () => {
    const listeners: Record<string, (() => void)[]> = {};
    let reloads = 0;
    const win = {
      location: { hash: '', origin: 'http://127.0.0.1:9', reload: () => void reloads++ },
      addEventListener: (ev: string, fn: () => void) => (listeners[ev] ??= []).push(fn),
    };
    pickBridge(win as unknown as Window);
    win.location.hash = '#other=1';
    for (const fn of listeners.hashchange ?? []) fn();
    expect(reloads).toBe(0);
    win.location.hash = '#token=abc';
    for (const fn of listeners.hashchange ?? []) fn();
    expect(reloads).toBe(1);
  });

  it('unwraps Electron invoke errors carrying ErrorInfo JSON', () => {
    const info = { kind: 'disk-full', message: 'Disk full.', fix: 'Free space.' };
    const e = new Error(`Error invoking remote method 'lipsync:call': Error: ${JSON.stringify(info)}`);
    expect(toErrorInfo(e)).toEqual(info);
  });
});
