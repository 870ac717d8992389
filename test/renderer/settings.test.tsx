// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { PairSettings } from '../../shared/settings.js';
import { makeApi } from '../../renderer/src/api.js';
import { ApiContext } from '../../renderer/src/context.js';
import { PREVIEW_DEBOUNCE_MS, SettingsView } from '../../renderer/src/views/SettingsView.js';
import { deferred, fakeBridge, pairSettings, pairStatus, type FakeBridge } from './fake-bridge.js';

afterEach(cleanup);

const sleep = (ms: number) => act(() => new Promise<void>((r) => setTimeout(r, ms)));

function renderSettings(b: FakeBridge, onRemoved?: (id: string) => void) {
  return render(
    <ApiContext.Provider value={makeApi(b)}>
      <SettingsView pairs={[pairStatus()]} {...(onRemoved ? { onRemoved } : {})} />
    </ApiContext.Provider>,
  );
}

const FILES = ['build/', 'build/app.js', 'debug.log', 'src/x.log', 'src/main.ts'];
function matches(pattern: string, f: string): boolean {
  if (pattern.startsWith('*.')) return f.endsWith(pattern.slice(1));
  return f === pattern || f.startsWith(pattern);
}

describe('Folder settings', () => {
  it('previews excludes live, debounced, only for the last text', async () => {
    const b = fakeBridge({
      list: () => [pairSettings()],
      previewExcludes: (p) => {
        const ex = p.excludes as string[];
        const hit = FILES.filter((f) => ex.some((e) => matches(e, f)));
        return { excluded: hit, count: hit.length, truncated: false };
      },
    });
    renderSettings(b);
    const ta = await screen.findByLabelText('Excludes');
    fireEvent.change(ta, { target: { value: '*' } });
    fireEvent.change(ta, { target: { value: '*.l' } });
    fireEvent.change(ta, { target: { value: '# logs\n*.log\n\n' } });
    await sleep(PREVIEW_DEBOUNCE_MS / 2);
    expect(b.callsOf('previewExcludes')).toHaveLength(0);
    expect(screen.getByText(/Checking which files/)).toBeTruthy();
    await waitFor(() => expect(b.callsOf('previewExcludes')).toHaveLength(1));
    expect(b.callsOf('previewExcludes')[0]).toEqual({ pair: 'docs', excludes: ['*.log'] });
    const preview = screen.getByLabelText('Exclude preview');
    await waitFor(() => expect(preview.textContent).toContain('Excludes 2 existing files or folders'));
    expect(within(preview).getByText('debug.log')).toBeTruthy();
    expect(within(preview).getByText('src/x.log')).toBeTruthy();

    fireEvent.change(ta, { target: { value: '*.log\nbuild/' } });
    await waitFor(() => expect(b.callsOf('previewExcludes')).toHaveLength(2));
    await waitFor(() => expect(preview.textContent).toContain('Excludes 4 existing'));

    fireEvent.change(ta, { target: { value: 'nothing-here' } });
    await waitFor(() => expect(preview.textContent).toContain('No existing files match'));
  });

  it('save sends only the changed fields to update', async () => {
    const b = fakeBridge({
      list: () => [pairSettings({ excludes: ['*.tmp'] })],
      previewExcludes: () => ({ excluded: [], count: 0, truncated: false }),
      update: (p) => pairSettings({ ...(p.patch as Partial<PairSettings>) }),
    });
    renderSettings(b);
    const save = await screen.findByRole('button', { name: 'Save' });
    expect(save).toHaveProperty('disabled', true);
    fireEvent.change(screen.getByLabelText('Direction'), { target: { value: 'send-only' } });
    fireEvent.change(screen.getByLabelText('Excludes'), { target: { value: '*.tmp\nnode_modules/' } });
    fireEvent.change(screen.getByLabelText(/Bandwidth limit/), { target: { value: '500' } });
    const zip = screen.getByLabelText('Compression') as HTMLSelectElement;
    expect(zip.value).toBe('auto');
    expect(screen.getByText(/Auto: on over slow or distant links \(round trip ≥ 10 ms\), off on a LAN/)).toBeTruthy();
    expect([...zip.options].map((o) => o.value)).toEqual(['auto', 'on', 'off']);
    fireEvent.change(zip, { target: { value: 'off' } });
    fireEvent.change(screen.getByLabelText(/Full rescan every/), { target: { value: '600' } });
    fireEvent.click(save);
    await waitFor(() =>
      expect(b.callsOf('update')).toEqual([
        {
          pair: 'docs',
          patch: {
            direction: 'send-only',
            excludes: ['*.tmp', 'node_modules/'],
            bwLimitKBps: 500,
            compression: 'off',
            rescanIntervalSec: 600,
          },
        },
      ]),
    );
    expect(await screen.findByText('Saved.')).toBeTruthy();
  });

  it('refuses invalid numbers and shows a save error with its fix', async () => {
    const b = fakeBridge({
      list: () => [pairSettings()],
      update: () => {
        throw { kind: 'invalid-settings', message: 'rescanIntervalSec: too big', fix: 'Use at most a week.' };
      },
    });
    renderSettings(b);
    const bw = await screen.findByLabelText(/Bandwidth limit/);
    fireEvent.change(bw, { target: { value: '-3' } });
    expect(screen.getByText('Enter a whole number, 0 or more.')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Save' })).toHaveProperty('disabled', true);
    fireEvent.change(bw, { target: { value: '10' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Use at most a week.');
  });

  it('shows the built-in excludes read-only beside the user patterns', async () => {
    const b = fakeBridge({ list: () => [pairSettings({ excludes: [] })] });
    renderSettings(b);
    const box = await screen.findByLabelText('Always excluded');
    expect([...box.querySelectorAll('li code')].map((c) => c.textContent)).toEqual([
      '.DS_Store',
      'Thumbs.db',
      '*.swp',
      '~$*',
      '.lipsync/',
    ]);
    // Read-only: not in the editable patterns, and nothing to edit them with.
    expect((screen.getByLabelText('Excludes') as HTMLTextAreaElement).value).toBe('');
    expect(box.querySelector('input, textarea, button')).toBeNull();
  });

  it('pause/resume, and remove asks first and says files are never deleted', async () => {
    const removed: string[] = [];
    const b = fakeBridge({
      list: () => [pairSettings()],
      pause: () => ({ paused: ['docs'] }),
      remove: () => ({ removed: 'docs' }),
    });
    renderSettings(b, (id) => removed.push(id));
    fireEvent.click(await screen.findByRole('button', { name: 'Pause syncing' }));
    fireEvent.click(screen.getByRole('button', { name: '8 hours' }));
    await waitFor(() => expect(b.callsOf('pause')).toEqual([{ pair: 'docs', forMs: 8 * 3_600_000 }]));

    fireEvent.click(screen.getByRole('button', { name: 'Remove this folder…' }));
    const dialog = screen.getByRole('alertdialog');
    expect(dialog.textContent).toMatch(/never deletes files/);
    expect(b.callsOf('remove')).toHaveLength(0);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('alertdialog')).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: 'Remove this folder…' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove (keep all files)' }));
    await waitFor(() => expect(b.callsOf('remove')).toEqual([{ pair: 'docs' }]));
    expect(removed).toEqual(['docs']);
    expect(await screen.findByText(/No folders yet/)).toBeTruthy();
  });

  it('loading and error states', async () => {
    const d = deferred<PairSettings[]>();
    renderSettings(fakeBridge({ list: () => d.promise }));
    expect(screen.getByText(/Loading folder settings/)).toBeTruthy();
    d.resolve([]);
    expect(await screen.findByText(/No folders yet/)).toBeTruthy();
    cleanup();
    renderSettings(
      fakeBridge({
        list: () => {
          throw { kind: 'daemon-unreachable', message: 'No service.', fix: 'Start it.' };
        },
      }),
    );
    expect((await screen.findByRole('alert')).textContent).toContain('Start it.');
  });
});
