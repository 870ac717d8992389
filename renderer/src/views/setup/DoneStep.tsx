import type { PairSettings } from '../../../../shared/settings.js';
import type { PairStatus } from '../../../../shared/status.js';
import { Loading } from '../../components.js';
import { PairCard } from '../StatusView.js';

/** Step 5: the new pair, its first sync's progress from live status. */
export function DoneStep({
  added,
  pairs,
  onClose,
}: {
  added: PairSettings;
  pairs: PairStatus[];
  onClose?: (() => void) | undefined;
}) {
  const pair = pairs.find((p) => p.id === added.id);
  return (
    <div className="card">
      <h3>{added.id} is set up</h3>
      <p>The first sync runs now. You can close this; syncing continues in the background.</p>
      {pair ? <PairCard pair={pair} /> : <Loading what="the first sync" />}
      <div className="actions">
        {onClose ? (
          <button type="button" className="primary" onClick={onClose}>
            Go to status
          </button>
        ) : null}
      </div>
    </div>
  );
}
