// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogRecord } from '../../shared/status.js';
import { makeApi } from '../../renderer/src/api.js';
import { ApiContext } from '../../renderer/src/context.js';
import { RecentView } from '../../renderer/src/views/RecentView.js';
import { deferred, fakeBridge, pairStatus, type FakeBridge } from './fake-bridge.js';

afterEach(cleanup);

const pairs = [
  pairStatus({ id: 'docs', local: '/home/ann/Docs' }),
  pairStatus({ id: 'photos', local: '/home/ann/Pics' }),
];
const rec = (over: Partial<LogRecord>): LogRecord => ({
  t: Date.UTC(2025, 0, 1, 12),
  pair: 'docs',
  level: 'info',
  event: 'push',
  msg: 'sent',
  ...over,
});
const ALL: LogRecord[] = [
  rec({ t: 1, event: 'push', paths: ['a.txt'] }),
  rec({ t: 2, pair: 'photos', event: 'pull', paths: ['cat.jpg'] }),
  rec({ t: 3, event: 'delete', paths: ['old.txt'] }),
  rec({ t: 4, event: 'rename', from: 'x.txt', to: 'y.txt' }),
  rec({ t: 5, pair: 'photos', event: 'conflict', paths: ['dog.jpg'] }),
];

function renderRecent(b: FakeBridge) {
  return render(
    <ApiContext.Provider value={makeApi(b)}>
      <RecentView pairs={pairs} />
    </ApiContext.Provider>,
  );
}
const items = () => within(screen.getByRole('list', { name: 'Recent changes' })).getAllByRole('listitem');

describe('Recent changes', () => {
  it('lists push/pull/delete/rename/conflict newest first and filters by pair', async () => {
    const b = fakeBridge({
      recent: (p) => ALL.filter((r) => !p.pair || r.pair === p.pair),
    });
    renderRecent(b);
    await screen.findByText('dog.jpg');
    expect(items().map((li) => li.getAttribute('data-pair'))).toEqual(['photos', 'docs', 'docs', 'photos', 'docs']);
    expect(screen.getByText('Renamed')).toBeTruthy();
    expect(screen.getByText('x.txt')).toBeTruthy();
    expect(screen.getByText('y.txt')).toBeTruthy();

    fireEvent.change(screen.getByLabelText('Folder'), { target: { value: 'photos' } });
    expect(await screen.findByText('cat.jpg')).toBeTruthy();
    await screen.findByText('dog.jpg');
    expect(items()).toHaveLength(2);
    expect(screen.queryByText('a.txt')).toBeNull();
    expect(b.callsOf('recent').at(-1)).toEqual({ pair: 'photos', limit: 200 });

    // Live records: only file changes of the filtered pair are added.
    b.pushLog(rec({ t: 6, pair: 'photos', event: 'push', paths: ['new.jpg'] }));
    b.pushLog(rec({ t: 7, pair: 'docs', event: 'push', paths: ['other.txt'] }));
    b.pushLog(rec({ t: 8, pair: 'photos', event: 'scan', msg: 'scanned' }));
    expect(items()).toHaveLength(3);
    expect(items()[0]?.textContent).toContain('new.jpg');
  });

  it('hides Open without openPath (browser) and opens the local file with it (Electron)', async () => {
    const b1 = fakeBridge({ recent: () => ALL });
    const { unmount } = renderRecent(b1);
    await screen.findByText('a.txt');
    expect(screen.queryByRole('button', { name: /^Open/ })).toBeNull();
    unmount();

    const b2 = fakeBridge({ recent: () => ALL }, { openPath: true, showInFolder: true });
    renderRecent(b2);
    fireEvent.click(await screen.findByRole('button', { name: 'Open a.txt' }));
    expect(b2.opened).toEqual(['/home/ann/Docs/a.txt']);
    fireEvent.click(screen.getByRole('button', { name: 'Show y.txt in folder' }));
    expect(b2.shown).toEqual(['/home/ann/Docs/y.txt']);
    expect(screen.queryByRole('button', { name: 'Show old.txt in folder' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Open cat.jpg' }));
    expect(b2.opened[1]).toBe('/home/ann/Pics/cat.jpg');
    // A deleted file has nothing to open.
    expect(screen.queryByRole('button', { name: 'Open old.txt' })).toBeNull();
  });

  it('"and N more" expands to the other paths and collapses again', async () => {
    const b = fakeBridge({ recent: () => [rec({ paths: ['a.txt', 'b.txt', 'c/d.txt'] })] });
    renderRecent(b);
    const more = await screen.findByRole('button', { name: 'and 2 more' });
    expect(more.getAttribute('aria-expanded')).toBe('false');
    expect(screen.queryByText('c/d.txt')).toBeNull();
    fireEvent.click(more);
    expect(more.getAttribute('aria-expanded')).toBe('true');
    const list = document.getElementById(more.getAttribute('aria-controls') ?? '');
    expect([...(list?.querySelectorAll('li') ?? [])].map((li) => li.textContent)).toEqual(['b.txt', 'c/d.txt']);
    fireEvent.click(screen.getByRole('button', { name: 'show fewer' }));
    expect(screen.queryByText('c/d.txt')).toBeNull();
  });

  it('sync errors and warnings from the log, with their fix: also one seen before only in `lipsync log`', async () => {
    const b = fakeBridge({
      recent: () => [
        rec({ t: 1, event: 'push', paths: ['a.txt'] }),
        rec({
          t: 2,
          event: 'error',
          level: 'error',
          msg: 'ssh failed (exit code 255) while talking to ann@nas.',
        }),
        rec({
          t: 3,
          event: 'error',
          level: 'warn',
          msg: 'Could not read 2 files here. Fix: Give yourself read access: chmod u+r FILE.',
          paths: ['locked.txt', 'sub/locked2.txt'],
        }),
      ],
    });
    renderRecent(b);
    await screen.findByText('a.txt');
    const [warn, problem] = items();
    expect(warn?.querySelector('.ev-badge')?.textContent).toBe('Warning');
    expect(warn?.querySelector('.notice-message')?.textContent).toBe('Could not read 2 files here.');
    expect(warn?.querySelector('.notice-fix')?.textContent).toBe(
      'How to fix: Give yourself read access: chmod u+r FILE.',
    );
    expect(warn?.textContent).toContain('locked.txt');
    expect(within(warn!).getByRole('button', { name: 'and 1 more' })).toBeTruthy();
    expect(problem?.querySelector('.ev-badge')?.textContent).toBe('Problem');
    expect(problem?.querySelector('.notice-message')?.textContent).toBe(
      'ssh failed (exit code 255) while talking to ann@nas.',
    );
    // The engine had no fix for it: the UI names what it means and what to do.
    expect(problem?.querySelector('.notice-fix')?.textContent).toMatch(
      /^How to fix: The connection to the server failed or was cut\. Check that the server is on and reachable/,
    );
    // Live: an error pushed while the view is open is added too.
    b.pushLog(rec({ t: 4, event: 'error', level: 'error', msg: 'The server ran out of space. Fix: Free some.' }));
    expect(items()[0]?.querySelector('.notice-fix')?.textContent).toBe('How to fix: Free some.');
  });

  it('loading, empty and error states', async () => {
    const d = deferred<LogRecord[]>();
    const b = fakeBridge({ recent: () => d.promise });
    renderRecent(b);
    expect(screen.getByText(/Loading recent changes/)).toBeTruthy();
    d.resolve([]);
    expect(await screen.findByText(/No changes yet/)).toBeTruthy();
    cleanup();

    let n = 0;
    const b2 = fakeBridge({
      recent: () => {
        if (n++ === 0) throw { kind: 'daemon-unreachable', message: 'Not running.', fix: 'Start lipsync.' };
        return [rec({ paths: ['back.txt'] })];
      },
    });
    renderRecent(b2);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('Start lipsync.');
    fireEvent.click(within(alert).getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText('back.txt')).toBeTruthy();
  });
});
