// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LogRecord } from '../../shared/status.js';
import { App } from '../../renderer/src/App.js';
import {
  NOTIFY_STORAGE_KEY,
  WEB_NOTIFY_INTERVAL_MS,
  WebNotifications,
  type NotificationApi,
} from '../../renderer/src/WebNotifications.js';
import { engineStatus, fakeBridge, pairStatus, type FakeBridge } from './fake-bridge.js';

/** A stand-in for the browser's Notification: records what was shown, answers the permission prompt. */
function fakeNotification(permission: 'default' | 'granted' | 'denied', answer: 'granted' | 'denied' = 'granted') {
  const shown: { title: string; body: string; tag?: string; click: () => void; closed: boolean }[] = [];
  const asked: number[] = [];
  class FakeNotification {
    static permission = permission;
    static requestPermission() {
      asked.push(Date.now());
      FakeNotification.permission = answer;
      return Promise.resolve(answer);
    }
    onclick: (() => void) | null = null;
    constructor(title: string, options: { body?: string; tag?: string } = {}) {
      const entry = { title, body: options.body ?? '', tag: options.tag, click: () => this.onclick?.(), closed: false };
      shown.push(entry);
      this.close = () => void (entry.closed = true);
    }
    close: () => void = () => undefined;
  }
  return { api: FakeNotification as unknown as NotificationApi, shown, asked };
}

const rec = (r: Partial<LogRecord> & Pick<LogRecord, 'event'>): LogRecord => ({
  t: Date.now(),
  pair: 'docs',
  level: 'info',
  msg: '',
  ...r,
});
const pushed = rec({ event: 'push', msg: 'sent 12 files (1 kB of data)' });
const conflict = rec({ event: 'conflict', level: 'warn', msg: 'conflict: notes.txt changed on both sides' });
const sshError = rec({ event: 'error', level: 'error', pair: 'photos', msg: 'ssh failed (exit code 255)' });
const massDelete = rec({
  event: 'state',
  level: 'warn',
  msg: 'paused: Deleting 30 of 40 files. Run `lipsync confirm docs` to go on.',
});

const pairs = [
  pairStatus({ id: 'docs', local: '/home/ann/Documents' }),
  pairStatus({ id: 'photos', local: '/p/Photos' }),
];

function renderToggle(api: NotificationApi | null, b: FakeBridge = fakeBridge()) {
  const opened: string[] = [];
  render(<WebNotifications onLog={(cb) => b.onLog(cb)} pairs={pairs} onOpen={(v) => opened.push(v)} api={api} />);
  return { b, opened };
}

/** Lets the permission prompt's promise settle. */
const settle = () => act(async () => {});

beforeEach(() => {
  localStorage.clear();
  vi.useFakeTimers();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe('web notifications', () => {
  it('are off until turned on; turning on asks the browser, then conflicts, errors and pauses arrive batched', async () => {
    const n = fakeNotification('default');
    const { b, opened } = renderToggle(n.api);
    // Off: nothing is asked, nothing is shown.
    b.pushLog(conflict);
    act(() => vi.advanceTimersByTime(60_000));
    expect(n.shown).toEqual([]);
    expect(n.asked).toEqual([]);

    const btn = screen.getByRole('button', { name: /^Notify me$/ });
    expect(btn.getAttribute('aria-pressed')).toBe('false');
    fireEvent.click(btn);
    await settle();
    expect(n.asked).toHaveLength(1);
    expect(screen.getByRole('button', { name: /Notifications on/ }).getAttribute('aria-pressed')).toBe('true');
    expect(localStorage.getItem(NOTIFY_STORAGE_KEY)).toBe('on');

    // One batch a short while after the first record: files synced are not news in a tab.
    b.pushLog(pushed);
    b.pushLog(conflict);
    b.pushLog(sshError);
    b.pushLog(massDelete);
    act(() => vi.advanceTimersByTime(1_999));
    expect(n.shown).toHaveLength(0);
    act(() => vi.advanceTimersByTime(1));
    expect(n.shown).toHaveLength(1);
    expect(n.shown[0]!.title).toBe('lipsync');
    expect(n.shown[0]!.tag).toBe('lipsync');
    expect(n.shown[0]!.body.split('\n')).toEqual([
      '1 conflict in Documents',
      'Sync error in Photos: ssh failed (exit code 255)',
      'Paused Documents: Deleting 30 of 40 files. Run `lipsync confirm docs` to go on.',
    ]);
    // A click shows what needs a look, and closes the notification.
    act(() => n.shown[0]!.click());
    expect(opened).toEqual(['conflicts']);
    expect(n.shown[0]!.closed).toBe(true);

    // At most one batch per interval, as on the desktop; files alone make none.
    b.pushLog(pushed);
    act(() => vi.advanceTimersByTime(WEB_NOTIFY_INTERVAL_MS));
    expect(n.shown).toHaveLength(1);
    b.pushLog(rec({ event: 'conflict', level: 'warn', pair: 'photos', msg: 'conflict: a.jpg' }));
    act(() => vi.advanceTimersByTime(2_000));
    expect(n.shown).toHaveLength(2);
    expect(n.shown[1]!.body).toBe('1 conflict in Photos');
    b.pushLog(sshError); // the same error again, before the pair synced: not repeated
    b.pushLog(massDelete);
    act(() => vi.advanceTimersByTime(WEB_NOTIFY_INTERVAL_MS - 1));
    expect(n.shown).toHaveLength(2);
    act(() => vi.advanceTimersByTime(1));
    expect(n.shown).toHaveLength(3);
    expect(n.shown[2]!.body).toBe('Paused Documents: Deleting 30 of 40 files. Run `lipsync confirm docs` to go on.');
    act(() => n.shown[2]!.click());
    expect(opened).toEqual(['conflicts', 'status']);

    // Turned off: no more, and the choice is forgotten.
    fireEvent.click(screen.getByRole('button', { name: /Notifications on/ }));
    expect(localStorage.getItem(NOTIFY_STORAGE_KEY)).toBeNull();
    b.pushLog(rec({ event: 'conflict', level: 'warn', msg: 'conflict: b.txt' }));
    act(() => vi.advanceTimersByTime(2 * WEB_NOTIFY_INTERVAL_MS));
    expect(n.shown).toHaveLength(3);
    expect(screen.getByRole('button', { name: /^Notify me$/ })).toBeTruthy();
  });

  it('a refused prompt leaves them off and says the browser blocks them', async () => {
    const n = fakeNotification('default', 'denied');
    const { b } = renderToggle(n.api);
    fireEvent.click(screen.getByRole('button', { name: /^Notify me$/ }));
    await settle();
    expect(screen.getByRole('note').textContent).toBe('Notifications blocked by the browser');
    expect(screen.getByRole('note').getAttribute('title')).toMatch(/allow them in the site settings/);
    expect(localStorage.getItem(NOTIFY_STORAGE_KEY)).toBeNull();
    b.pushLog(conflict);
    act(() => vi.advanceTimersByTime(60_000));
    expect(n.shown).toEqual([]);
  });

  it('stay on across reloads once allowed (no second prompt); absent where the browser has none', () => {
    localStorage.setItem(NOTIFY_STORAGE_KEY, 'on');
    const n = fakeNotification('granted');
    const { b } = renderToggle(n.api);
    expect(screen.getByRole('button', { name: /Notifications on/ })).toBeTruthy();
    b.pushLog(sshError);
    act(() => vi.advanceTimersByTime(2_000));
    expect(n.shown.map((x) => x.body)).toEqual(['Sync error in Photos: ssh failed (exit code 255)']);
    expect(n.asked).toEqual([]);
    cleanup();

    renderToggle(null);
    expect(screen.queryByRole('button', { name: /notifications/i })).toBeNull();
  });

  it('the web UI offers them in its top bar; the desktop app (no web bridge) does not', async () => {
    const n = fakeNotification('default');
    vi.stubGlobal('Notification', n.api);
    try {
      const desktop = fakeBridge({ status: () => engineStatus(pairs) });
      render(<App bridge={desktop} />);
      await settle();
      expect(screen.queryByRole('button', { name: /^Notify me$/ })).toBeNull();
      cleanup();

      const web = Object.assign(fakeBridge({ status: () => engineStatus(pairs) }), {
        onConnection: (cb: (c: 'open') => void) => {
          cb('open');
          return () => undefined;
        },
      });
      render(<App bridge={web} />);
      await settle();
      const banner = document.querySelector('header.topbar') as HTMLElement;
      fireEvent.click(screen.getByRole('button', { name: /^Notify me$/ }));
      await settle();
      expect(banner.contains(screen.getByRole('button', { name: /Notifications on/ }))).toBe(true);
      web.pushLog(conflict);
      act(() => vi.advanceTimersByTime(2_000));
      expect(n.shown.map((x) => x.body)).toEqual(['1 conflict in Documents']);
      // The click opens the Conflicts view.
      act(() => n.shown[0]!.click());
      await settle();
      expect(screen.getByRole('button', { name: /Conflicts/, current: 'page' })).toBeTruthy();
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
