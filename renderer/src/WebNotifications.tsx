/**
 * Browser notifications for the web UI (the desktop app has its own, from the main process):
 * off until the user turns them on here, which asks the browser's permission. Batched by the
 * same NotificationBatcher as the desktop's (shared/notifications.ts), but only what needs a
 * look: new conflicts, sync errors, and pairs the engine paused (a mass deletion to confirm).
 */
import { useEffect, useRef, useState } from 'react';
import { NotificationBatcher, pairName } from '../../shared/notifications.js';
import type { LogRecord, PairStatus } from '../../shared/status.js';

/** Where the choice is kept (per browser, like the permission itself). */
export const NOTIFY_STORAGE_KEY = 'lipsync.webNotifications';
/** At most one notification this often, as on the desktop. */
export const WEB_NOTIFY_INTERVAL_MS = 30_000;

type Permission = 'default' | 'granted' | 'denied';

/** The part of the browser's Notification API used here (a fake in the tests). */
export interface NotificationApi {
  readonly permission: Permission;
  requestPermission(): Promise<Permission>;
  new (title: string, options?: { body?: string; tag?: string }): { onclick: (() => void) | null; close(): void };
}

function browserNotifications(): NotificationApi | null {
  const n = (globalThis as { Notification?: NotificationApi }).Notification;
  return typeof n === 'function' ? n : null;
}

function storedOn(): boolean {
  try {
    return globalThis.localStorage?.getItem(NOTIFY_STORAGE_KEY) === 'on';
  } catch {
    return false;
  }
}

function store(on: boolean): void {
  try {
    if (on) globalThis.localStorage?.setItem(NOTIFY_STORAGE_KEY, 'on');
    else globalThis.localStorage?.removeItem(NOTIFY_STORAGE_KEY);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
}

export function WebNotifications({
  onLog,
  pairs,
  onOpen,
  api = browserNotifications(),
}: {
  /** Subscribes to activity-log records (the bridge's onLog); returns an unsubscribe function. */
  onLog: (cb: (r: LogRecord) => void) => () => void;
  pairs: PairStatus[];
  /** A click on a notification: show the view that explains it. */
  onOpen: (what: 'conflicts' | 'status') => void;
  api?: NotificationApi | null;
}) {
  const [on, setOn] = useState(storedOn);
  const [permission, setPermission] = useState<Permission>(api?.permission ?? 'default');
  const names = useRef(new Map<string, string>());
  names.current = new Map(pairs.map((p) => [p.id, pairName(p)]));
  const open = useRef(onOpen);
  open.current = onOpen;

  const active = api !== null && on && permission === 'granted';
  useEffect(() => {
    if (!active || !api) return undefined;
    const batcher = new NotificationBatcher({
      intervalMs: WEB_NOTIFY_INTERVAL_MS,
      files: false,
      pairName: (id) => names.current.get(id) ?? id,
      notify: (texts) => {
        const n = new api('lipsync', { body: texts.join('\n'), tag: 'lipsync' });
        n.onclick = () => {
          globalThis.focus?.();
          open.current(texts.some((t) => / conflicts? in /.test(t)) ? 'conflicts' : 'status');
          n.close();
        };
      },
    });
    const off = onLog((r) => batcher.feed(r));
    return () => {
      off();
      batcher.dispose();
    };
  }, [active, api, onLog]);

  if (!api) return null;
  if (permission === 'denied')
    return (
      <span
        className="notify-toggle muted small"
        role="note"
        title="This browser blocks notifications from this page: allow them in the site settings (the icon left of the address), then reload."
      >
        Notifications blocked by the browser
      </span>
    );
  return (
    <button
      type="button"
      className="notify-toggle"
      aria-pressed={active}
      title={
        active
          ? 'Notifying you of conflicts, sync errors and paused folders. Click to stop.'
          : 'Get a browser notification for conflicts, sync errors and paused folders'
      }
      onClick={() => {
        if (active) {
          setOn(false);
          store(false);
          return;
        }
        const ask = permission === 'granted' ? Promise.resolve<Permission>('granted') : api.requestPermission();
        void ask.then(
          (p) => {
            setPermission(p);
            setOn(p === 'granted');
            store(p === 'granted');
          },
          () => setPermission(api.permission),
        );
      }}
    >
      {active ? 'Notifications on' : 'Notify me'}
    </button>
  );
}
