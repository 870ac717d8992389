import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LogRecord } from '../../shared/status.js';
import { NotificationBatcher, SNOOZE_FOREVER } from '../../shared/notifications.js';

const rec = (r: Partial<LogRecord> & Pick<LogRecord, 'event'>): LogRecord => ({
  t: Date.now(),
  pair: 'documents',
  level: 'info',
  msg: '',
  ...r,
});
const sent = (n: number, pair = 'documents') =>
  rec({ event: 'push', pair, msg: `sent ${n} file${n === 1 ? '' : 's'} (10 bytes of data)`, paths: ['a'] });
const conflict = (pair = 'documents') =>
  rec({ event: 'conflict', level: 'warn', pair, msg: 'conflict: a.txt changed on both sides' });

describe('NotificationBatcher', () => {
  let notify: ReturnType<typeof vi.fn<(texts: string[]) => void>>;
  let b: NotificationBatcher;
  const names: Record<string, string> = { documents: 'Documents', photos: 'Photos' };

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date(2025, 0, 15, 12, 0, 0));
    notify = vi.fn<(texts: string[]) => void>();
    b = new NotificationBatcher({ intervalMs: 30_000, settleMs: 2_000, notify, pairName: (id) => names[id] ?? id });
  });
  afterEach(() => {
    b.dispose();
    vi.useRealTimers();
  });

  it('batches records into one notification after the settle time', () => {
    b.feed(sent(10));
    b.feed(sent(2));
    b.feed(conflict());
    expect(notify).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_999);
    expect(notify).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(notify).toHaveBeenCalledTimes(1);
    expect(notify).toHaveBeenCalledWith(['12 files synced in Documents', '1 conflict in Documents']);
  });

  it('counts files from the message (the paths list is capped) across pairs', () => {
    b.feed(rec({ event: 'push', msg: 'sent 1500 files (1 bytes of data)', paths: new Array(1000).fill('x') }));
    b.feed(rec({ event: 'pull', pair: 'photos', msg: 'received 3 files (1 bytes of data)' }));
    b.feed(rec({ event: 'delete', pair: 'photos', msg: 'deleted 2 paths here, as on the server' }));
    b.feed(rec({ event: 'rename', pair: 'photos', msg: 'moved a → b on the server', from: 'a', to: 'b' }));
    expect(b.flush()).toEqual(['1506 files synced']);
  });

  it('flushes at most once every interval', () => {
    b.feed(sent(1));
    vi.advanceTimersByTime(2_000);
    expect(notify).toHaveBeenCalledTimes(1);
    expect(notify).toHaveBeenLastCalledWith(['1 file synced in Documents']);
    b.feed(sent(5));
    vi.advanceTimersByTime(10_000);
    b.feed(sent(5));
    vi.advanceTimersByTime(19_999); // 29.999 s after the first flush (at t = 2 s)
    expect(notify).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(notify).toHaveBeenCalledTimes(2);
    expect(notify).toHaveBeenLastCalledWith(['10 files synced in Documents']);
  });

  it('groups conflicts of several pairs', () => {
    b.feed(conflict('documents'));
    b.feed(conflict('photos'));
    b.feed(conflict('photos'));
    expect(b.flush()).toEqual(['3 conflicts in Documents and Photos']);
  });

  it('ignores resolved conflicts, state changes and scans', () => {
    b.feed(rec({ event: 'conflict', level: 'info', msg: 'conflict 3 (a) resolved: kept local' }));
    b.feed(rec({ event: 'state', msg: 'paused' }));
    b.feed(rec({ event: 'scan', msg: 'scanned' }));
    vi.advanceTimersByTime(60_000);
    expect(notify).not.toHaveBeenCalled();
  });

  it('notifies an error once until the pair syncs again', () => {
    const err = rec({ event: 'error', level: 'error', msg: 'Cannot reach server.' });
    b.feed(err);
    b.feed(err);
    expect(b.flush()).toEqual(['Sync error in Documents: Cannot reach server.']);
    b.feed(err);
    expect(b.flush()).toEqual([]);
    b.feed(sent(1));
    b.feed(err);
    expect(b.flush()).toEqual(['1 file synced in Documents', 'Sync error in Documents: Cannot reach server.']);
  });

  it('drops batches while snoozed, and notifies again after', () => {
    b.snooze(Date.now() + 60 * 60_000);
    expect(b.isSnoozed()).toBe(true);
    b.feed(sent(4));
    vi.advanceTimersByTime(5_000);
    expect(notify).not.toHaveBeenCalled();
    vi.advanceTimersByTime(60 * 60_000);
    expect(b.isSnoozed()).toBe(false);
    b.feed(sent(1));
    vi.advanceTimersByTime(30_000);
    expect(notify).toHaveBeenCalledWith(['1 file synced in Documents']);
  });

  it('snoozes until turned on', () => {
    b.snooze(SNOOZE_FOREVER);
    b.feed(conflict());
    vi.advanceTimersByTime(365 * 24 * 3_600_000);
    expect(notify).not.toHaveBeenCalled();
    b.snooze(null);
    b.feed(conflict());
    vi.advanceTimersByTime(30_000);
    expect(notify).toHaveBeenCalledWith(['1 conflict in Documents']);
  });

  it('tells a pause the engine made (mass deletion), not one the user asked for', () => {
    b.feed(rec({ event: 'state', level: 'info', msg: 'paused for 60 min' }));
    b.feed(rec({ event: 'state', level: 'info', msg: 'paused' }));
    expect(b.flush()).toEqual([]);
    b.feed(
      rec({
        event: 'state',
        level: 'warn',
        pair: 'photos',
        msg: 'paused: Deleting 12 of 20 files. Run `lipsync confirm photos` to go on.',
      }),
    );
    b.feed(conflict());
    vi.advanceTimersByTime(30_000); // one batch per interval: the (empty) flush above was one
    expect(notify).toHaveBeenCalledWith([
      '1 conflict in Documents',
      'Paused Photos: Deleting 12 of 20 files. Run `lipsync confirm photos` to go on.',
    ]);
  });

  it('without files (the web UI): only conflicts, errors and pauses make a batch', () => {
    const web = new NotificationBatcher({
      intervalMs: 30_000,
      notify,
      files: false,
      pairName: (id) => names[id] ?? id,
    });
    web.feed(sent(10));
    web.feed(rec({ event: 'rename', msg: 'moved a → b', from: 'a', to: 'b' }));
    vi.advanceTimersByTime(60_000);
    expect(notify).not.toHaveBeenCalled();
    web.feed(sent(3));
    web.feed(rec({ event: 'error', level: 'error', msg: 'ssh failed (exit code 255)' }));
    vi.advanceTimersByTime(2_000);
    expect(notify).toHaveBeenCalledTimes(1);
    expect(notify).toHaveBeenCalledWith(['Sync error in Documents: ssh failed (exit code 255)']);
    web.dispose();
  });
});
