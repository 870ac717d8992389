import { useEffect, useId, useState } from 'react';
import type { PairSettings } from '../../../../shared/settings.js';
import type { PairStatus } from '../../../../shared/status.js';
import { useApi } from '../../context.js';
import { parseRemoteAddress } from '../../../../shared/remote-address.js';
import { DoneStep } from './DoneStep.js';
import { FirstSyncStep } from './FirstSyncStep.js';
import { FoldersStep } from './FoldersStep.js';
import { KeyStep } from './KeyStep.js';
import { ServerStep } from './ServerStep.js';
import type { FolderChoice, KnownServer, ServerTarget } from './types.js';

type Step = 'server' | 'key' | 'folders' | 'initial' | 'done';
const STEPS: { id: Step; label: string }[] = [
  { id: 'server', label: 'Server' },
  { id: 'key', label: 'SSH key' },
  { id: 'folders', label: 'Folders' },
  { id: 'initial', label: 'First sync' },
  { id: 'done', label: 'Done' },
];

/** The setup wizard: which step, and what the steps before it decided. Each step is its own component. */
export function SetupWizard({
  pairs,
  firstRun,
  onClose,
}: {
  pairs: PairStatus[];
  firstRun: boolean;
  onClose?: () => void;
}) {
  const ids = useId();
  const [step, setStep] = useState<Step>('server');
  const [server, setServer] = useState<ServerTarget | null>(null);
  const [identityFile, setIdentityFile] = useState<string | undefined>(undefined);
  const [folders, setFolders] = useState<FolderChoice | null>(null);
  const [added, setAdded] = useState<PairSettings | null>(null);
  const known = useKnownServers();

  const stepIndex = STEPS.findIndex((s) => s.id === step);
  return (
    <section aria-labelledby={`${ids}-title`} className="wizard">
      <div className="view-head">
        <h2 id={`${ids}-title`}>{firstRun ? 'Welcome to lipsync' : 'Add a folder'}</h2>
        {onClose && step !== 'done' ? (
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        ) : null}
      </div>
      {firstRun && step === 'server' ? (
        <p className="lead">Keep a folder on this computer and a folder on your server in sync, both ways, over SSH.</p>
      ) : null}
      <ol className="steps" aria-label="Setup steps">
        {STEPS.map((s, i) => (
          <li
            key={s.id}
            className={i < stepIndex ? 'done' : i === stepIndex ? 'current' : ''}
            aria-current={i === stepIndex ? 'step' : undefined}
          >
            {s.label}
          </li>
        ))}
      </ol>
      {step === 'server' ? (
        <ServerStep
          initial={server}
          identityFile={identityFile}
          known={known}
          onPickKnown={(s) => {
            setServer({ host: s.host, port: s.port, user: s.user });
            setIdentityFile(s.identityFile);
            setStep('folders');
          }}
          onConnected={(s, loggedIn) => {
            setServer(s);
            setStep(loggedIn ? 'folders' : 'key');
          }}
        />
      ) : null}
      {step === 'key' && server ? (
        <KeyStep
          server={server}
          initialKey={identityFile}
          onBack={() => setStep('server')}
          onReady={(key) => {
            setIdentityFile(key);
            setStep('folders');
          }}
        />
      ) : null}
      {step === 'folders' && server ? (
        <FoldersStep
          server={server}
          identityFile={identityFile}
          initial={folders}
          onBack={() => setStep('server')}
          onNext={(c) => {
            setFolders(c);
            setStep('initial');
          }}
        />
      ) : null}
      {step === 'initial' && server && folders ? (
        <FirstSyncStep
          server={server}
          identityFile={identityFile}
          folders={folders}
          onBack={() => setStep('folders')}
          onAdded={(p) => {
            setAdded(p);
            setStep('done');
          }}
        />
      ) : null}
      {step === 'done' && added ? <DoneStep added={added} pairs={pairs} onClose={onClose} /> : null}
    </section>
  );
}

/** Servers already used by other pairs: "Add folder" with one of them skips the connection and key steps. */
function useKnownServers(): KnownServer[] {
  const api = useApi();
  const [known, setKnown] = useState<KnownServer[]>([]);
  useEffect(() => {
    let live = true;
    api.call('list', {}).then(
      (l) => {
        if (!live) return;
        const seen = new Map<string, KnownServer>();
        for (const p of l) {
          const parsed = parseRemoteAddress(p.remote);
          if (!parsed.ok || parsed.remote.kind !== 'ssh') continue;
          const r = parsed.remote;
          const s: KnownServer = { host: r.host, port: r.port ?? 22, user: r.user ?? '' };
          if (p.identityFile) s.identityFile = p.identityFile;
          seen.set(`${s.user}@${s.host}:${s.port}`, s);
        }
        setKnown([...seen.values()]);
      },
      () => {
        /* no known servers: the full wizard still works */
      },
    );
    return () => {
      live = false;
    };
  }, [api]);
  return known;
}
