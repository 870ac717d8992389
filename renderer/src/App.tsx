import { useCallback, useEffect, useMemo, useState } from 'react';
import { makeApi } from './api.js';
import { isWebBridge, type ConnectionState } from './bridge.js';
import { RichText } from './components.js';
import { ApiContext, useEngineStatus } from './context.js';
import type { LipsyncBridge } from './ipc.js';
import { ConflictsView } from './views/ConflictsView.js';
import { RecentView } from './views/RecentView.js';
import { SettingsView } from './views/SettingsView.js';
import { SetupWizard } from './views/setup/Wizard.js';
import { StatusView } from './views/StatusView.js';
import { VersionsView } from './views/VersionsView.js';
import { useTheme, type ThemeChoice } from './theme.js';
import { WebNotifications } from './WebNotifications.js';

export type View = 'status' | 'recent' | 'conflicts' | 'versions' | 'settings' | 'setup';

const NAV: { id: Exclude<View, 'setup'>; label: string }[] = [
  { id: 'status', label: 'Status' },
  { id: 'recent', label: 'Recent changes' },
  { id: 'conflicts', label: 'Conflicts' },
  { id: 'versions', label: 'Versions' },
  { id: 'settings', label: 'Folder settings' },
];

const THEME_LABEL: Record<ThemeChoice, string> = { system: 'System', light: 'Light', dark: 'Dark' };

export function App({ bridge, initialView }: { bridge: LipsyncBridge; initialView?: View }) {
  const api = useMemo(() => makeApi(bridge), [bridge]);
  const engine = useEngineStatus(api);
  const [view, setView] = useState<View>(initialView ?? 'status');
  const [firstRunShown, setFirstRunShown] = useState(false);
  const [conn, setConn] = useState<ConnectionState>('open');
  const [theme, cycleTheme] = useTheme();

  useEffect(() => (isWebBridge(bridge) ? bridge.onConnection(setConn) : undefined), [bridge]);
  const onLog = useCallback<LipsyncBridge['onLog']>((cb) => bridge.onLog(cb), [bridge]);

  // First run: no pairs yet → the setup wizard.
  const noPairs = engine.status !== null && engine.status.pairs.length === 0;
  useEffect(() => {
    if (noPairs && !firstRunShown) {
      setFirstRunShown(true);
      setView('setup');
    }
  }, [noPairs, firstRunShown]);

  const pairs = engine.status?.pairs ?? [];
  const conflictCount = pairs.reduce((n, p) => n + p.conflicts, 0);

  return (
    <ApiContext.Provider value={api}>
      <div className="app">
        <a className="skip-link" href="#main">
          Skip to content
        </a>
        <header className="topbar">
          <h1 className="brand">lipsync</h1>
          <nav aria-label="Main">
            <ul>
              {NAV.map((n) => (
                <li key={n.id}>
                  <button
                    type="button"
                    className={`nav-btn${view === n.id ? ' active' : ''}`}
                    aria-current={view === n.id ? 'page' : undefined}
                    onClick={() => setView(n.id)}
                  >
                    {n.label}
                    {n.id === 'conflicts' && conflictCount > 0 ? (
                      <span className="count" aria-label={`${conflictCount} open`}>
                        {conflictCount}
                      </span>
                    ) : null}
                  </button>
                </li>
              ))}
              <li>
                <button
                  type="button"
                  className={`nav-btn${view === 'setup' ? ' active' : ''}`}
                  aria-current={view === 'setup' ? 'page' : undefined}
                  onClick={() => setView('setup')}
                >
                  Add folder
                </button>
              </li>
            </ul>
          </nav>
          {/* The desktop app notifies from its main process; a browser tab asks first. */}
          {isWebBridge(bridge) ? <WebNotifications onLog={onLog} pairs={pairs} onOpen={setView} /> : null}
          <button
            type="button"
            className="theme-toggle"
            onClick={cycleTheme}
            aria-label={`Theme: ${THEME_LABEL[theme]}. Change theme`}
            title="Change theme"
          >
            {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'} {THEME_LABEL[theme]}
          </button>
        </header>
        {conn !== 'open' ? (
          <div className="banner" role="status">
            {conn === 'connecting' ? (
              'Connecting to lipsync…'
            ) : conn === 'unauthorized' ? (
              <RichText text="lipsync no longer accepts this page's address (it was restarted with a new access token). Paste the address `lipsync web-url` prints into this tab." />
            ) : (
              'Connection lost. Reconnecting…'
            )}
          </div>
        ) : null}
        <main id="main" tabIndex={-1}>
          {view === 'status' ? (
            <StatusView
              engine={engine}
              onAddFolder={() => setView('setup')}
              onOpenConflicts={() => setView('conflicts')}
            />
          ) : view === 'recent' ? (
            <RecentView pairs={pairs} />
          ) : view === 'conflicts' ? (
            <ConflictsView version={conflictCount} pairs={pairs} />
          ) : view === 'versions' ? (
            <VersionsView pairs={pairs} />
          ) : view === 'settings' ? (
            <SettingsView pairs={pairs} />
          ) : (
            <SetupWizard
              pairs={pairs}
              firstRun={pairs.length === 0}
              onClose={() => {
                setView('status');
                engine.reload();
              }}
            />
          )}
        </main>
      </div>
    </ApiContext.Provider>
  );
}
