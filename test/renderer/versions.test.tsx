// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { VersionInfo } from '../../shared/api.js';
import { makeApi } from '../../renderer/src/api.js';
import { ApiContext } from '../../renderer/src/context.js';
import { VersionsView, restoredName } from '../../renderer/src/views/VersionsView.js';
import { fakeBridge, pairStatus, type FakeBridge } from './fake-bridge.js';

afterEach(cleanup);

const version = (over: Partial<VersionInfo> = {}): VersionInfo => ({
  id: 'remote:2026-12-06/101500000/report.txt',
  pair: 'docs',
  path: 'report.txt',
  side: 'remote',
  trashedAt: Date.UTC(2026, 11, 6, 10, 15),
  size: 2048,
  mtime: Date.UTC(2026, 11, 6, 9, 0),
  kind: 'file',
  origin: 'nas',
  ...over,
});

function renderVersions(b: FakeBridge) {
  return render(
    <ApiContext.Provider value={makeApi(b)}>
      <VersionsView pairs={[pairStatus({ id: 'docs' }), pairStatus({ id: 'photos' })]} />
    </ApiContext.Provider>,
  );
}

describe('Versions', () => {
  it('lists versions from both trashes with size, dates and where each is kept', async () => {
    const b = fakeBridge({
      versions: () => [
        version(),
        version({
          id: 'local:2026-12-05/080000000/old.txt',
          path: 'old.txt',
          side: 'local',
          origin: 'laptop',
          size: 10,
        }),
      ],
    });
    renderVersions(b);
    const table = await screen.findByRole('table', { name: 'Kept versions' });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]!.textContent).toContain('report.txt');
    expect(rows[0]!.textContent).toContain('2.0 KiB');
    expect(rows[0]!.textContent).toContain('the server (nas)');
    expect(rows[1]!.textContent).toContain('this computer (laptop)');
  });

  it('searches by name and folder', async () => {
    const b = fakeBridge({ versions: () => [] });
    renderVersions(b);
    await screen.findByText(/No versions kept/);
    fireEvent.change(screen.getByLabelText('Folder'), { target: { value: 'photos' } });
    fireEvent.change(screen.getByLabelText('Name contains'), { target: { value: ' cat ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Search' }));
    await waitFor(() => expect(b.callsOf('versions').at(-1)).toEqual({ pair: 'photos', query: 'cat' }));
    expect(await screen.findByText(/No versions kept matching “cat”/)).toBeTruthy();
  });

  it('restores a version to its place, or next to it, and says where the replaced one went', async () => {
    const b = fakeBridge({
      versions: () => [version()],
      restore: (p: Record<string, unknown>) => ({
        pair: p.pair,
        path: (p.to as string | undefined) ?? 'report.txt',
        replacedTo: p.to ? null : '.lipsync/trash/2026-12-07/120000000/report.txt',
      }),
    });
    renderVersions(b);
    fireEvent.click(await screen.findByRole('button', { name: /^Restore report\.txt from .*[^t]$/ }));
    await waitFor(() =>
      expect(b.callsOf('restore')).toEqual([{ pair: 'docs', id: 'remote:2026-12-06/101500000/report.txt' }]),
    );
    expect((await screen.findByRole('status')).textContent).toMatch(
      /Restored report\.txt in docs\. The version it replaced is kept in \.lipsync\/trash\//,
    );
    fireEvent.click(await screen.findByRole('button', { name: /next to it$/ }));
    await waitFor(() => expect(b.callsOf('restore')).toHaveLength(2));
    expect(b.callsOf('restore')[1]).toMatchObject({
      pair: 'docs',
      to: expect.stringMatching(/^report \(restored \d{4}-\d\d-\d\d \d{4}\)\.txt$/),
    });
  });

  it('shows the engine error of a failed restore', async () => {
    const b = fakeBridge({
      versions: () => [version()],
      restore: () => {
        throw {
          kind: 'invalid-settings',
          message: 'Cannot restore to report.txt: x is not a folder here.',
          fix: 'Restore it next to its old place.',
        };
      },
    });
    renderVersions(b);
    fireEvent.click(await screen.findByRole('button', { name: /^Restore report\.txt from .*[^t]$/ }));
    expect(await screen.findByText(/is not a folder here/)).toBeTruthy();
    expect(screen.getByText(/Restore it next to its old place/)).toBeTruthy();
  });
});

describe('restoredName', () => {
  it('puts the date before the extension', () => {
    const at = new Date(Date.UTC(2026, 11, 7, 14, 5));
    expect(restoredName('dir/a.b/report.txt', at)).toBe('dir/a.b/report (restored 2026-12-07 1405).txt');
    expect(restoredName('.bashrc', at)).toBe('.bashrc (restored 2026-12-07 1405)');
    expect(restoredName('notes', at)).toBe('notes (restored 2026-12-07 1405)');
  });
});
