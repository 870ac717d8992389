/**
 * What the setup wizard's component tests share: a connection test's answer (conn), a new
 * computer's bridge (no folders yet), and the server step filled in and tested.
 */
import { fireEvent, render, screen } from '@testing-library/react';
import { App } from '../../renderer/src/App.js';
import type { TestConnectionResult } from '../../renderer/src/api.js';
import { engineStatus, fakeBridge, type FakeBridge } from './fake-bridge.js';

export const FP = 'SHA256:abcDEF0123456789abcdef0123456789ABCDEFghijk';

/** A reachable server with a known host key (FP), a working login and rsync, but for `over`. */
export const conn = (over: Partial<TestConnectionResult>): TestConnectionResult => ({
  reachable: true,
  hostKey: { type: 'ssh-ed25519', fingerprint: FP, status: 'known' },
  auth: 'ok',
  rsyncVersion: '3.2.7',
  ...over,
});

/** The bridge of a computer with no folders yet (empty status and list), answering `handlers` too. */
export function newComputer(handlers: Parameters<typeof fakeBridge>[0] = {}): FakeBridge {
  return fakeBridge({ status: () => engineStatus([]), list: () => [], ...handlers });
}

/** Fills in the server step and presses Test connection. */
export function fillServer(host = 'nas.local', port = '2222', user = 'ann') {
  fireEvent.change(screen.getByLabelText('Server address'), { target: { value: host } });
  fireEvent.change(screen.getByLabelText('Port'), { target: { value: port } });
  fireEvent.change(screen.getByLabelText('User name'), { target: { value: user } });
  fireEvent.click(screen.getByRole('button', { name: 'Test connection' }));
}

/** Renders the app on a first run (the wizard's welcome), then fills in and tests the server. */
export async function startWizard(b: FakeBridge, ...server: Parameters<typeof fillServer>) {
  render(<App bridge={b} />);
  await screen.findByRole('heading', { name: 'Welcome to lipsync' });
  fillServer(...server);
}
