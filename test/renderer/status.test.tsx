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
          pairStatus({
            id: 'big',
            state: 'syncing',
            progress: {
              filesDone: 0,
              filesTotal: 1,
              bytesDone: 1.5 * 1024 * 1024,
              bytesTotal: 6 * 1024 * 1024,
              rateBps: 60 * 1024,
              etaSec: 75,
              currentFile: 'video.mp4',
            },
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
    expect(within(card('busy')).queryByTestId('progress-eta')).toBeNull(); // no total: no time left
    expect(within(card('big')).getByTestId('progress-bytes').textContent).toBe('1.5 MiB of 6.0 MiB');
    expect(within(card('big')).getByTestId('progress-eta').textContent).toBe('1 min 15 s left');
    expect(card('big').textContent).toContain('video.mp4');
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
    fireEvent.click(screen.getByRole('button', { name: 'Until resumed' }));
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

  it('pauses for 30 minutes, 1 hour or 8 hours', async () => {
    const b = fakeBridge({ status: () => engineStatus([pairStatus()]), pause: () => ({ paused: ['docs'] }) });
    render(<App bridge={b} />);
    const pause = await screen.findByRole('button', { name: 'Pause' });
    expect(pause.getAttribute('aria-expanded')).toBe('false');
    fireEvent.click(pause);
    expect(pause.getAttribute('aria-expanded')).toBe('true');
    const group = screen.getByRole('group', { name: 'Pause docs for how long' });
    expect(
      within(group)
        .getAllByRole('button')
        .map((x) => x.textContent),
    ).toEqual(['30 minutes', '1 hour', '8 hours', 'Until resumed', 'Cancel']);
    fireEvent.click(within(group).getByRole('button', { name: '1 hour' }));
    expect(b.callsOf('pause')).toEqual([{ pair: 'docs', forMs: 3_600_000 }]);
    expect(screen.queryByRole('group', { name: 'Pause docs for how long' })).toBeNull();
    await waitFor(() =>
      expect((screen.getByRole('button', { name: 'Pause' }) as HTMLButtonElement).disabled).toBe(false),
    );
    fireEvent.click(screen.getByRole('button', { name: 'Pause' }));
    fireEvent.click(screen.getByRole('button', { name: '30 minutes' }));
    await waitFor(() =>
      expect((screen.getByRole('button', { name: 'Pause' }) as HTMLButtonElement).disabled).toBe(false),
    );
    fireEvent.click(screen.getByRole('button', { name: 'Pause' }));
    fireEvent.click(screen.getByRole('button', { name: '8 hours' }));
    expect(b.callsOf('pause').map((p) => p.forMs)).toEqual([3_600_000, 1_800_000, 28_800_000]);
  });

  it('a mass-delete pause has a Confirm button (not a Resume that pauses again) and no backquotes', async () => {
    const b = fakeBridge({
      status: () =>
        engineStatus([
          pairStatus({
            state: 'paused',
            reason: {
              kind: 'cancelled',
              message: 'This sync would delete 40 of 50 files, so the pair was paused before deleting anything.',
              fix: 'If that is what you want, run `lipsync confirm docs`; otherwise restore the files (or mount the disk).',
            },
          }),
        ]),
      confirm: () => ({ confirmed: 'docs' }),
    });
    render(<App bridge={b} />);
    expect((await screen.findByTestId('state-docs')).textContent).toBe('Waiting for your confirmation');
    expect(card('docs').textContent).toContain('would delete 40 of 50 files');
    expect(card('docs').textContent).not.toContain('`');
    expect(within(card('docs')).queryByRole('button', { name: 'Resume' })).toBeNull();
    fireEvent.click(within(card('docs')).getByRole('button', { name: 'Confirm deletions' }));
    expect(b.callsOf('confirm')).toEqual([{ pair: 'docs' }]);
    b.pushState(engineStatus([pairStatus({ state: 'syncing' })]));
    expect(screen.queryByRole('button', { name: 'Confirm deletions' })).toBeNull();
  });

  it('shows the code in fix texts as code, without literal backquotes', async () => {
    const b = fakeBridge({
      status: () =>
        engineStatus([
          pairStatus({
            state: 'error',
            lastError: {
              kind: 'rsync-too-old',
              message: 'rsync is too old.',
              fix: 'Install rsync 3.1, then run `lipsync sync docs`.',
            },
            warnings: [{ kind: 'watch-limit', message: 'Few watches left.', fix: 'Run `sudo sysctl -p`.' }],
          }),
        ]),
    });
    render(<App bridge={b} />);
    await screen.findByTestId('state-docs');
    const alert = within(card('docs')).getByRole('alert');
    expect(alert.textContent).toContain('Install rsync 3.1, then run lipsync sync docs.');
    expect(alert.textContent).not.toContain('`');
    expect([...alert.querySelectorAll('code')].map((c) => c.textContent)).toContain('lipsync sync docs');
    // Warnings too.
    expect(card('docs').textContent).toContain('Run sudo sysctl -p.');
    expect(card('docs').textContent).not.toContain('`');
  });

  it('is never up to date while the server is disconnected, and says what pending -1 means', async () => {
    const b = fakeBridge({
      status: () =>
        engineStatus([
          pairStatus({
            id: 'off',
            remoteWatcher: 'disconnected',
            lastError: { kind: 'host-unreachable', message: 'The server does not answer.' },
          }),
          pairStatus({ id: 'off2', remoteWatcher: 'disconnected' }),
          pairStatus({ id: 'full', pending: -1 }),
        ]),
    });
    render(<App bridge={b} />);
    expect((await screen.findByTestId('state-off')).textContent).toBe('Server not connected');
    expect(screen.getByTestId('state-off2').textContent).toBe('Server not connected');
    expect(screen.queryByText('Up to date')).toBeNull();
    expect(screen.getByTestId('state-full').textContent).toBe('Full compare pending');
    expect(card('full').textContent).toContain('full compare pending');
    expect(document.body.textContent).not.toContain('-1');
  });

  it('an error the engine has no fix for (ssh failed, exit code 255) is shown with one', async () => {
    const b = fakeBridge({
      status: () =>
        engineStatus([
          pairStatus({
            id: 'cut',
            state: 'error',
            lastError: { kind: 'unknown', message: 'ssh failed (exit code 255) while talking to ann@nas.' },
          }),
        ]),
    });
    render(<App bridge={b} />);
    expect((await screen.findByTestId('state-cut')).textContent).toBe('Error');
    const box = within(card('cut')).getByRole('alert');
    expect(box.textContent).toContain('ssh failed (exit code 255) while talking to ann@nas.');
    expect(box.querySelector('.notice-fix')?.textContent).toMatch(
      /^How to fix: The connection to the server failed or was cut\./,
    );
  });

  it('shows a pause as a pause (neutral), not a problem, and never syncing and paused at once', async () => {
    const pauseReason = { kind: 'cancelled' as const, message: 'Paused until resumed.' };
    const d = deferred<unknown>();
    const b = fakeBridge({
      status: () => engineStatus([pairStatus({ state: 'paused', reason: pauseReason })]),
      sync: () => d.promise,
    });
    render(<App bridge={b} />);
    expect((await screen.findByTestId('state-docs')).textContent).toBe('Paused');
    expect(within(card('docs')).queryByRole('alert')).toBeNull();
    expect(card('docs').textContent).not.toContain('Problem');
    expect(card('docs').querySelector('.badge')?.className).toContain('badge-muted');
    expect(within(card('docs')).getByRole('status').textContent).toBe('Paused until resumed.');
    // Finishing the current step after a pause: "Pausing…", not "Syncing…" beside a pause notice.
    b.pushState(engineStatus([pairStatus({ state: 'syncing', reason: pauseReason })]));
    expect(screen.getByTestId('state-docs').textContent).toBe('Pausing…');
    expect(within(card('docs')).queryByRole('alert')).toBeNull();
    // Sync now, then paused while the call runs: the button no longer says Syncing….
    b.pushState(engineStatus([pairStatus()]));
    fireEvent.click(screen.getByRole('button', { name: 'Sync now' }));
    expect(screen.getByRole('button', { name: 'Syncing…' })).toBeTruthy();
    b.pushState(engineStatus([pairStatus({ state: 'paused', reason: pauseReason })]));
    expect(screen.queryByText('Syncing…')).toBeNull();
    expect(screen.getByTestId('state-docs').textContent).toBe('Paused');
  });

  it('desktop: Open folder opens the pair folder; web: the path has a Copy button', async () => {
    const desk = fakeBridge({ status: () => engineStatus([pairStatus()]) }, { openPath: true });
    render(<App bridge={desk} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Open folder /home/ann/Docs' }));
    expect(desk.opened).toEqual(['/home/ann/Docs']);
    expect(screen.queryByRole('button', { name: /^Copy/ })).toBeNull();
    cleanup();

    const copied: string[] = [];
    Object.defineProperty(navigator, 'clipboard', {
      configurable: true,
      value: { writeText: (t: string) => Promise.resolve(void copied.push(t)) },
    });
    const web = fakeBridge({ status: () => engineStatus([pairStatus()]) });
    render(<App bridge={web} />);
    expect(await screen.findByTestId('state-docs')).toBeTruthy();
    expect(screen.queryByRole('button', { name: /^Open folder/ })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Copy path of docs' }));
    expect(await screen.findByText(/Copied\./)).toBeTruthy();
    expect(copied).toEqual(['/home/ann/Docs']);
  });
});
