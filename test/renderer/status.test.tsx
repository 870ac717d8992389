// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../renderer/src/App.js';
import { deferred, engineStatus, fakeBridge, pairStatus } from './fake-bridge.js';

afterEach(cleanup);

function card(id: string): HTMLElement {
  const el = document.querySelector<HTMLElement>(`[data-pair="${id}"]`);
  if (!el) throw new Error(`no card for ${id}`);
  return el;
}

describe('Status view', () => {
  it('renders each state, reasons with their fix, and progress', async () => {
    const b = fakeBridge({
      status: () =>
        engineStatus([
          pairStatus({ id: 'ok' }),
          pairStatus({
            id: 'deg',
            state: 'degraded',
            reason: {
              kind: 'watch-limit',
              message: 'Too many folders to watch.',
              fix: 'Raise fs.inotify.max_user_watches.',
            },
          }),
          pairStatus({
            id: 'err',
            state: 'error',
            lastError: { kind: 'host-unreachable', message: 'The server does not answer.', fix: 'Check the network.' },
          }),
          pairStatus({
            id: 'busy',
            state: 'syncing',
            progress: { filesDone: 3, filesTotal: 10, bytesDone: 5 * 1024 * 1024, rateBps: 2 * 1024 * 1024 },
          }),
          pairStatus({ id: 'stopped', state: 'paused' }),
        ]),
    });
    render(<App bridge={b} />);
    expect(await screen.findByTestId('state-ok')).toHaveProperty('textContent', 'Up to date');
    expect(screen.getByTestId('state-deg').textContent).toBe('Degraded');
    expect(within(card('deg')).getByText('Too many folders to watch.')).toBeTruthy();
    expect(within(card('deg')).getByText('Raise fs.inotify.max_user_watches.')).toBeTruthy();
    expect(screen.getByTestId('state-err').textContent).toBe('Error');
    expect(within(card('err')).getByRole('alert').textContent).toContain('Check the network.');
    expect(screen.getByTestId('state-busy').textContent).toBe('Syncing…');
    const bar = within(card('busy')).getByRole('progressbar');
    expect(bar.getAttribute('aria-valuenow')).toBe('3');
    expect(bar.getAttribute('aria-valuetext')).toBe('3 of 10 files');
    expect(card('busy').textContent).toContain('5.0 MiB');
    expect(card('busy').textContent).toContain('2.0 MiB/s');
    expect(screen.getByTestId('state-stopped').textContent).toBe('Paused');
    expect(within(card('stopped')).getByRole('button', { name: 'Resume' })).toBeTruthy();
    // Only the clean pair says up to date.
    expect(screen.getAllByText('Up to date')).toHaveLength(1);
  });

  it('never says up to date while there is a conflict, and live state pushes update it', async () => {
    const b = fakeBridge({ status: () => engineStatus([pairStatus({ conflicts: 2 })]) });
    render(<App bridge={b} />);
    expect((await screen.findByTestId('state-docs')).textContent).toBe('2 conflicts to resolve');
    expect(screen.queryByText('Up to date')).toBeNull();
    expect(screen.getByRole('button', { name: 'Resolve conflicts' })).toBeTruthy();
    b.pushState(engineStatus([pairStatus({ conflicts: 1, state: 'degraded' })]));
    expect(screen.getByTestId('state-docs').textContent).toBe('Degraded');
    expect(screen.queryByText('Up to date')).toBeNull();
    b.pushState(engineStatus([pairStatus({ conflicts: 0 })]));
    expect(screen.getByTestId('state-docs').textContent).toBe('Up to date');
  });

  it('Sync now calls sync for the pair and shows Syncing… while it runs', async () => {
    const d = deferred<unknown>();
    const b = fakeBridge({ status: () => engineStatus([pairStatus()]), sync: () => d.promise });
    render(<App bridge={b} />);
    const btn = await screen.findByRole('button', { name: 'Sync now' });
    fireEvent.click(btn);
    expect(b.callsOf('sync')).toEqual([{ pair: 'docs' }]);
    expect(await screen.findByRole('button', { name: 'Syncing…' })).toHaveProperty('disabled', true);
    d.resolve({
      results: [
        {
          pair: 'docs',
          ok: true,
          filesSent: 2,
          filesReceived: 1,
          deleted: 0,
          renamed: 0,
          conflicts: 0,
          bytesSent: 10,
          warnings: [],
        },
      ],
    });
    expect(await screen.findByRole('button', { name: 'Sync now' })).toBeTruthy();
    expect(screen.getByText(/2 sent, 1 received/)).toBeTruthy();
  });

  it('shows a failed sync with its fix', async () => {
    const b = fakeBridge({
      status: () => engineStatus([pairStatus()]),
      sync: () => {
        throw { kind: 'auth-failed', message: 'The server refused the key.', fix: 'Install your key again.' };
      },
    });
    render(<App bridge={b} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Sync now' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Install your key again.');
  });

  it('Pause and Resume call the API', async () => {
    const b = fakeBridge({
      status: () => engineStatus([pairStatus()]),
      pause: () => ({ paused: ['docs'] }),
      resume: () => ({ resumed: ['docs'] }),
    });
    render(<App bridge={b} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Pause' }));
    expect(b.callsOf('pause')).toEqual([{ pair: 'docs' }]);
    b.pushState(engineStatus([pairStatus({ state: 'paused' })]));
    // The button stays disabled until the pause call has answered (a click on it then does nothing).
    const resume = (await screen.findByRole('button', { name: 'Resume' })) as HTMLButtonElement;
    await waitFor(() => expect(resume.disabled).toBe(false));
    fireEvent.click(resume);
    expect(b.callsOf('resume')).toEqual([{ pair: 'docs' }]);
  });

  it('loading, error (with retry) and empty states', async () => {
    const d = deferred<unknown>();
    let fail = true;
    const b = fakeBridge({
      status: () => {
        if (fail)
          throw { kind: 'daemon-unreachable', message: 'lipsync is not running.', fix: 'Start it with lipsync run.' };
        return d.promise;
      },
    });
    render(<App bridge={b} />);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('lipsync is not running.');
    expect(alert.textContent).toContain('Start it with lipsync run.');
    fail = false;
    fireEvent.click(within(alert).getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText(/Loading status/)).toBeTruthy();
    d.resolve(engineStatus([]));
    // No pairs: first run opens the setup wizard; the status view then shows its empty state.
    expect(await screen.findByRole('heading', { name: 'Welcome to lipsync' })).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Status' }));
    expect(await screen.findByText('No folders are synced yet.')).toBeTruthy();
  });
});
