// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConflictInfo } from '../../shared/api.js';
import { makeApi } from '../../renderer/src/api.js';
import { ApiContext } from '../../renderer/src/context.js';
import { ConflictsView } from '../../renderer/src/views/ConflictsView.js';
import type { PairStatus } from '../../shared/status.js';
import { conflict, deferred, fakeBridge, pairStatus, type FakeBridge } from './fake-bridge.js';

afterEach(cleanup);

function renderConflicts(b: FakeBridge, pairs?: PairStatus[]) {
  return render(
    <ApiContext.Provider value={makeApi(b)}>
      <ConflictsView version={0} {...(pairs ? { pairs } : {})} />
    </ApiContext.Provider>,
  );
}

function store(initial: ConflictInfo[]) {
  let open = [...initial];
  return {
    conflicts: () => open,
    resolve: (p: Record<string, unknown>) => {
      open = open.filter((c) => !(c.id === p.id && c.pair === p.pair));
      return { resolved: p.id, kept: p.keep };
    },
  };
}

describe('Conflicts', () => {
  it('shows both versions of every conflict across pairs', async () => {
    const b = fakeBridge(
      store([
        conflict({ seq: 1, pair: 'docs', path: 'notes.txt' }),
        conflict({ seq: 1, pair: 'photos', path: 'cat.jpg' }),
      ]),
    );
    renderConflicts(b);
    const row = (await screen.findByText('notes.txt')).closest('li') as HTMLElement;
    expect(screen.getByText('cat.jpg')).toBeTruthy();
    // Conflict 1 of each pair: IDs that name the pair, as `lipsync conflicts` shows them.
    expect(row.textContent).toContain('ID docs-1');
    expect((screen.getByText('cat.jpg').closest('li') as HTMLElement).textContent).toContain('ID photos-1');
    const table = within(row).getByRole('table');
    expect(within(table).getByRole('rowheader', { name: 'Local' })).toBeTruthy();
    expect(within(table).getByRole('rowheader', { name: 'Remote (newer)' })).toBeTruthy();
    expect(table.textContent).toContain('100 B');
    expect(table.textContent).toContain('250 B');
    expect(table.textContent).toContain('laptop');
    expect(table.textContent).toContain('nas');
    for (const name of ['Keep local', 'Keep remote', 'Keep both'])
      expect(within(row).getByRole('button', { name: new RegExp(name) })).toBeTruthy();
  });

  it('resolves one row with its own button', async () => {
    const b = fakeBridge(store([conflict({ seq: 7, path: 'a.txt' })]));
    renderConflicts(b);
    fireEvent.click(await screen.findByRole('button', { name: 'Keep remote for a.txt' }));
    await waitFor(() => expect(b.callsOf('resolve')).toEqual([{ id: 'docs-7', pair: 'docs', keep: 'remote' }]));
    expect(await screen.findByText(/No conflicts/)).toBeTruthy();
  });

  it('selects many and applies one choice to all of them', async () => {
    const b = fakeBridge(
      store([
        conflict({ seq: 1, path: 'a.txt' }),
        conflict({ seq: 2, path: 'b.txt' }),
        conflict({ seq: 3, pair: 'photos', path: 'c.jpg' }),
      ]),
    );
    renderConflicts(b);
    await screen.findByText('a.txt');
    const bulkBoth = screen.getByRole('button', { name: 'Keep both for selected' });
    expect(bulkBoth).toHaveProperty('disabled', true);
    fireEvent.click(screen.getByRole('checkbox', { name: 'Select a.txt (docs)' }));
    fireEvent.click(screen.getByRole('checkbox', { name: 'Select c.jpg (photos)' }));
    expect(screen.getByText('2 selected')).toBeTruthy();
    fireEvent.click(bulkBoth);
    await waitFor(() =>
      expect(b.callsOf('resolve')).toEqual([
        { id: 'docs-1', pair: 'docs', keep: 'both' },
        { id: 'photos-3', pair: 'photos', keep: 'both' },
      ]),
    );
    await waitFor(() => expect(screen.queryByText('a.txt')).toBeNull());
    expect(screen.getByText('b.txt')).toBeTruthy();
    expect(screen.getByText('0 selected')).toBeTruthy();

    // Select all + keep local.
    fireEvent.click(screen.getByRole('checkbox', { name: 'Select all' }));
    fireEvent.click(screen.getByRole('button', { name: 'Keep local for selected' }));
    await waitFor(() => expect(b.callsOf('resolve').at(-1)).toEqual({ id: 'docs-2', pair: 'docs', keep: 'local' }));
    expect(await screen.findByText(/No conflicts/)).toBeTruthy();
  });

  it('shows a resolve failure with its fix, and loading/error states', async () => {
    const d = deferred<ConflictInfo[]>();
    const b = fakeBridge({
      conflicts: () => d.promise,
      resolve: () => {
        throw { kind: 'host-unreachable', message: 'Server down.', fix: 'Try again when it is back.' };
      },
    });
    renderConflicts(b);
    expect(screen.getByText(/Loading conflicts/)).toBeTruthy();
    d.resolve([conflict()]);
    fireEvent.click(await screen.findByRole('button', { name: 'Keep local for notes.txt' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Try again when it is back.');
    cleanup();

    const b2 = fakeBridge({
      conflicts: () => {
        throw { kind: 'daemon-unreachable', message: 'No service.' };
      },
    });
    renderConflicts(b2);
    expect((await screen.findByRole('alert')).textContent).toContain('No service.');
  });

  it('desktop: opens a conflict file or shows it in its folder; web: its full path with Copy', async () => {
    const c = conflict({ path: 'sub/notes.txt', copyPath: 'sub/notes (conflict).txt' });
    const pairs = [pairStatus({ id: 'docs', local: '/home/ann/Docs' })];
    const desk = fakeBridge(store([c]), { openPath: true, showInFolder: true });
    renderConflicts(desk, pairs);
    const files = await screen.findByRole('list', { name: 'Files of sub/notes.txt' });
    fireEvent.click(within(files).getByRole('button', { name: 'Show sub/notes.txt in folder' }));
    fireEvent.click(within(files).getByRole('button', { name: 'Open sub/notes (conflict).txt' }));
    fireEvent.click(within(files).getByRole('button', { name: 'Show sub/notes (conflict).txt in folder' }));
    expect(desk.shown).toEqual(['/home/ann/Docs/sub/notes.txt', '/home/ann/Docs/sub/notes (conflict).txt']);
    expect(desk.opened).toEqual(['/home/ann/Docs/sub/notes (conflict).txt']);
    expect(within(files).queryByRole('button', { name: /^Copy/ })).toBeNull();
    cleanup();

    const copied: string[] = [];
    Object.defineProperty(navigator, 'clipboard', {
      configurable: true,
      value: { writeText: (t: string) => Promise.resolve(void copied.push(t)) },
    });
    const web = fakeBridge(store([c]));
    renderConflicts(web, pairs);
    const webFiles = await screen.findByRole('list', { name: 'Files of sub/notes.txt' });
    expect(within(webFiles).queryByRole('button', { name: /^(Open|Show)/ })).toBeNull();
    expect(webFiles.textContent).toContain('/home/ann/Docs/sub/notes (conflict).txt');
    fireEvent.click(within(webFiles).getByRole('button', { name: 'Copy path of sub/notes (conflict).txt' }));
    await waitFor(() => expect(copied).toEqual(['/home/ann/Docs/sub/notes (conflict).txt']));
  });
});
