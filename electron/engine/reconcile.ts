/**
 * The reconciler: the one place where every sync decision is made. Pure, no I/O.
 *
 * For one dirty path it compares the local state (L), the remote state (R) and
 * the base (B, the state both sides agreed on after the last sync) and returns
 * one action. The decision is a TABLE: `ROWS` below is evaluated in order and
 * the first matching row decides. Its rows are the rows R1–R19 of the table in
 * docs/sync-semantics.md ("Decisions"), in the same order, with the same text;
 * a unit test checks that they line up.
 *
 * Over ~400 lines on purpose: the rules, the first-sync pass and ACTIONS (what each
 * decision means to the code) are read against each other and against the doc.
 */
import type { InitialSyncMode } from '../../shared/api.js';
import type { Direction } from '../../shared/settings.js';
import type { EntryKind } from './types.js';

/** One side's state at a path, or the base's: what the decision needs. */
export interface SideState {
  kind: EntryKind;
  size: number;
  mtimeNs: bigint;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Symlink target, for symlinks; null otherwise. */
  target: string | null;
}

export interface ReconcileInput {
  path: string;
  /** Last synced state (null: never synced, or forgotten). */
  base: SideState | null;
  /** null: absent locally. */
  local: SideState | null;
  /** null: absent remotely. */
  remote: SideState | null;
  /** Local changed since the base (caller computed; ignored when base is null). */
  localChanged: boolean;
  /** Remote changed since the base (caller computed, allowing for whole-second remote mtimes; ignored when base is null). */
  remoteChanged: boolean;
  /** Set by the caller after a 'compare': whether both files hold the same bytes. */
  sameContent?: boolean;
  direction: Direction;
}

export type ActionType =
  | 'none'
  | 'record'
  | 'forget'
  | 'push'
  | 'pull'
  | 'compare'
  | 'conflict'
  | 'keep-local-aside'
  | 'delete-local'
  | 'delete-remote'
  | 'delete-dir-if-empty-local'
  | 'delete-dir-if-empty-remote';

export interface Decision {
  action: ActionType;
  /** The row that decided, e.g. 'R7': a row of the table in docs/sync-semantics.md. */
  rule: string;
  /** A short human sentence for the log. */
  why: string;
}

// ------------------------------------------------------------------ what each action involves

/**
 * Everything the cycle needs to know about carrying out an action, in one row per
 * action: act dispatches on `lane`, the server lock follows `writesRemote`, N5 holds
 * back what `changesSide`, the mass-delete check counts what `deletes`, and the next
 * chunk is decided during this one only as `overlap` allows (see cycle/compare.ts
 * overlapSafe).
 */
export interface ActionFacts {
  /**
   * Where act puts it: the rsync push or pull of the chunk, the base only (`record`,
   * `forget`), a content comparison first (`compare`), a local copy kept aside (`aside`),
   * or a folder removed at the end of the cycle if empty (`dir-local`, `dir-remote`).
   */
  lane: 'none' | 'record' | 'forget' | 'compare' | 'push' | 'pull' | 'aside' | 'dir-local' | 'dir-remote';
  /** May change the server: decided and carried out under the server lock. */
  writesRemote: boolean;
  /** Changes a side or moves content: never done below a symlinked folder (N5). */
  changesSide: boolean;
  /** Deletes what the base knows: counted by the mass-delete check (S2). */
  deletes: boolean;
  /**
   * Whether the next chunk (other paths, possibly below this one) may be decided while
   * this is carried out: `yes`; `same-kind` when the path keeps its kind on both sides
   * (a push or pull onto nothing or onto the same kind); `no` for anything that deletes,
   * renames, forgets or changes a kind.
   */
  overlap: 'yes' | 'same-kind' | 'no';
}

const act = (
  lane: ActionFacts['lane'],
  writesRemote: boolean,
  changesSide: boolean,
  deletes: boolean,
  overlap: ActionFacts['overlap'],
): ActionFacts => ({ lane, writesRemote, changesSide, deletes, overlap });

/** The actions, one row each (columns: lane, writes the server, changes a side, deletes, overlap). */
export const ACTIONS: Readonly<Record<ActionType, ActionFacts>> = {
  none: act('none', false, false, false, 'yes'),
  record: act('record', false, false, false, 'yes'),
  forget: act('forget', false, false, false, 'no'),
  compare: act('compare', true, false, false, 'no'),
  push: act('push', true, true, false, 'same-kind'),
  pull: act('pull', false, true, false, 'same-kind'),
  conflict: act('aside', true, true, false, 'no'),
  'keep-local-aside': act('aside', false, true, false, 'no'),
  'delete-local': act('pull', false, true, true, 'no'),
  'delete-remote': act('push', true, true, true, 'no'),
  'delete-dir-if-empty-local': act('dir-local', false, true, false, 'no'),
  'delete-dir-if-empty-remote': act('dir-remote', true, true, false, 'no'),
};

// ------------------------------------------------------------------ facts

/** How the two present sides relate. */
type Relation =
  /** Same kind and the same: dirs, equal symlink targets, files with equal content and executable bits. */
  | 'same'
  /** Files with equal content whose executable bits differ. */
  | 'same-content-exec-differs'
  /** Files of equal size whose content was not compared yet. */
  | 'unknown'
  /** Different kinds, symlink targets or file content. */
  | 'differs';

/** What the rows match on, derived once from the input. */
interface Facts {
  b: SideState | null;
  l: SideState | null;
  r: SideState | null;
  /** Local changed since B; with no B: local present. */
  lc: boolean;
  /** Remote changed since B; with no B: remote present. */
  rc: boolean;
  /** How L and R relate, when both are present; null otherwise. */
  rel: Relation | null;
}

const EXEC_BITS = 0o111;

function changed(side: SideState | null, base: SideState | null, flag: boolean): boolean {
  if (!base) return side !== null;
  if (!side) return true;
  // A kind that differs from the base is a change whatever the caller's flag says.
  return flag || side.kind !== base.kind;
}

function relation(l: SideState, r: SideState, sameContent: boolean | undefined): Relation {
  if (l.kind !== r.kind) return 'differs';
  switch (l.kind) {
    case 'dir':
      return 'same';
    case 'symlink':
      return l.target === r.target ? 'same' : 'differs';
    case 'file':
      if (l.size !== r.size || sameContent === false) return 'differs';
      if (sameContent === undefined) return 'unknown';
      return (l.mode & EXEC_BITS) === (r.mode & EXEC_BITS) ? 'same' : 'same-content-exec-differs';
  }
}

function facts(i: ReconcileInput): Facts {
  return {
    b: i.base,
    l: i.local,
    r: i.remote,
    lc: changed(i.local, i.base, i.localChanged),
    rc: changed(i.remote, i.base, i.remoteChanged),
    rel: i.local && i.remote ? relation(i.local, i.remote, i.sameContent) : null,
  };
}

// ------------------------------------------------------------------ the table

interface Outcome {
  action: ActionType;
  why: string;
}

interface Row {
  id: string;
  /** The situation, word for word as in the doc's table. */
  when: string;
  match: (f: Facts) => boolean;
  do: Record<Direction, Outcome>;
}

const o = (action: ActionType, why: string): Outcome => ({ action, why });
const every = (action: ActionType, why: string): Record<Direction, Outcome> => ({
  'two-way': o(action, why),
  'send-only': o(action, why),
  'receive-only': o(action, why),
});

const isDir = (s: SideState | null): boolean => s?.kind === 'dir';
const onlyLocal = (f: Facts): boolean => f.b !== null && f.lc && !f.rc;
const onlyRemote = (f: Facts): boolean => f.b !== null && !f.lc && f.rc;
/** Both present, and both changed or no base (first sync / created on both sides). */
const bothPresentChanged = (f: Facts): boolean => f.l !== null && f.r !== null && f.lc && f.rc;

/** Evaluated in order; the first matching row decides. Rows = the doc's table rows R1–R19. */
const ROWS: readonly Row[] = [
  {
    id: 'R1',
    when: 'absent on both sides, no base',
    match: (f) => !f.l && !f.r && !f.b,
    do: every('none', 'absent on both sides'),
  },
  {
    id: 'R2',
    when: 'absent on both sides, base present: deleted on both sides',
    match: (f) => !f.l && !f.r && f.b !== null,
    do: every('forget', 'deleted on both sides'),
  },
  {
    id: 'R3',
    when: 'base present, neither side changed',
    match: (f) => f.b !== null && !f.lc && !f.rc,
    do: every('none', 'unchanged on both sides'),
  },
  {
    id: 'R4',
    when: 'no base, only the local side has it',
    match: (f) => !f.b && f.l !== null && !f.r,
    do: {
      'two-way': o('push', 'new here: sent to the server'),
      'send-only': o('push', 'new here: sent to the server'),
      'receive-only': o('none', 'new here: stays local (receive-only)'),
    },
  },
  {
    id: 'R5',
    when: 'no base, only the remote side has it',
    match: (f) => !f.b && !f.l && f.r !== null,
    do: {
      'two-way': o('pull', 'new on the server: fetched'),
      'send-only': o('none', 'new on the server: ignored (send-only)'),
      'receive-only': o('pull', 'new on the server: fetched'),
    },
  },
  {
    id: 'R6',
    when: 'only local changed, both sides directories: permission bits',
    match: (f) => onlyLocal(f) && isDir(f.l) && isDir(f.r),
    do: {
      'two-way': o('push', 'folder permissions changed here: applied on the server'),
      'send-only': o('push', 'folder permissions changed here: applied on the server'),
      'receive-only': o('none', 'folder permissions changed here: kept here (receive-only)'),
    },
  },
  {
    id: 'R7',
    when: 'only local changed, local present: modified or kind changed',
    match: (f) => onlyLocal(f) && f.l !== null,
    do: {
      'two-way': o('push', 'changed here: sent to the server'),
      'send-only': o('push', 'changed here: sent to the server'),
      'receive-only': o(
        'keep-local-aside',
        'changed here: kept aside as a conflict copy, server version fetched (receive-only)',
      ),
    },
  },
  {
    id: 'R8',
    when: 'only local changed, deleted locally, remote an unchanged directory',
    match: (f) => onlyLocal(f) && !f.l && isDir(f.r),
    do: {
      'two-way': o('delete-dir-if-empty-remote', 'folder deleted here: deleted on the server once empty'),
      'send-only': o('delete-dir-if-empty-remote', 'folder deleted here: deleted on the server once empty'),
      'receive-only': o('pull', 'folder deleted here: fetched again (receive-only)'),
    },
  },
  {
    id: 'R9',
    when: 'only local changed, deleted locally, remote an unchanged file or symlink',
    match: (f) => onlyLocal(f) && !f.l,
    do: {
      'two-way': o('delete-remote', 'deleted here: deleted on the server'),
      'send-only': o('delete-remote', 'deleted here: deleted on the server'),
      'receive-only': o('pull', 'deleted here: fetched again (receive-only)'),
    },
  },
  {
    id: 'R10',
    when: 'only remote changed, both sides directories: permission bits',
    match: (f) => onlyRemote(f) && isDir(f.l) && isDir(f.r),
    do: {
      'two-way': o('pull', 'folder permissions changed on the server: applied here'),
      'send-only': o('none', 'folder permissions changed on the server: ignored (send-only)'),
      'receive-only': o('pull', 'folder permissions changed on the server: applied here'),
    },
  },
  {
    id: 'R11',
    when: 'only remote changed, remote present: modified or kind changed',
    match: (f) => onlyRemote(f) && f.r !== null,
    do: {
      'two-way': o('pull', 'changed on the server: fetched'),
      'send-only': o('none', 'changed on the server: ignored (send-only)'),
      'receive-only': o('pull', 'changed on the server: fetched'),
    },
  },
  {
    id: 'R12',
    when: 'only remote changed, deleted remotely, local an unchanged directory',
    match: (f) => onlyRemote(f) && !f.r && isDir(f.l),
    do: {
      'two-way': o('delete-dir-if-empty-local', 'folder deleted on the server: deleted here once empty'),
      'send-only': o('push', 'folder deleted on the server: sent again (send-only)'),
      'receive-only': o('delete-dir-if-empty-local', 'folder deleted on the server: deleted here once empty'),
    },
  },
  {
    id: 'R13',
    when: 'only remote changed, deleted remotely, local an unchanged file or symlink',
    match: (f) => onlyRemote(f) && !f.r,
    do: {
      'two-way': o('delete-local', 'deleted on the server: deleted here'),
      'send-only': o('push', 'deleted on the server: sent again (send-only)'),
      'receive-only': o('delete-local', 'deleted on the server: deleted here'),
    },
  },
  {
    id: 'R14',
    when: 'deleted locally, modified remotely: the modification wins',
    match: (f) => f.b !== null && !f.l && f.r !== null && f.rc,
    do: {
      'two-way': o('pull', 'deleted here but modified on the server: restored here'),
      'send-only': o('forget', 'deleted here but modified on the server: server version left alone (send-only)'),
      'receive-only': o('pull', 'deleted here but modified on the server: restored here'),
    },
  },
  {
    id: 'R15',
    when: 'modified locally, deleted remotely: the modification wins',
    match: (f) => f.b !== null && f.l !== null && !f.r && f.lc,
    do: {
      'two-way': o('push', 'deleted on the server but modified here: restored on the server'),
      'send-only': o('push', 'deleted on the server but modified here: restored on the server'),
      'receive-only': o('forget', 'deleted on the server but modified here: kept here only (receive-only)'),
    },
  },
  {
    id: 'R16',
    when: 'both present, the same: directories, equal symlinks, or files with equal content and executable bits',
    match: (f) => bothPresentChanged(f) && f.rel === 'same',
    do: every('record', 'the same on both sides: recorded'),
  },
  {
    id: 'R17',
    when: 'both present, files with equal content but different executable bits',
    match: (f) => bothPresentChanged(f) && f.rel === 'same-content-exec-differs',
    do: {
      'two-way': o('pull', 'same content, executable bit differs: the server’s applied here'),
      'send-only': o('push', 'same content, executable bit differs: applied on the server (send-only)'),
      'receive-only': o('pull', 'same content, executable bit differs: the server’s applied here'),
    },
  },
  {
    id: 'R18',
    when: 'both present, files of equal size, content not compared yet',
    match: (f) => bothPresentChanged(f) && f.rel === 'unknown',
    do: every('compare', 'changed on both sides with the same size: comparing content'),
  },
  {
    id: 'R19',
    when: 'both present, different: content, symlink targets or kinds',
    match: (f) => bothPresentChanged(f) && f.rel === 'differs',
    do: {
      'two-way': o('conflict', 'changed differently on both sides: local version kept as a conflict copy'),
      'send-only': o('push', 'changed on both sides: this version sent over the server’s (send-only)'),
      'receive-only': o(
        'keep-local-aside',
        'changed on both sides: local version kept aside, server version fetched (receive-only)',
      ),
    },
  },
];

const ACTION_COLUMNS: readonly Direction[] = ['two-way', 'send-only', 'receive-only'];

/** Rule id → one line: the situation and the action per direction, as in the doc's table. */
export const RULES: Record<string, string> = Object.fromEntries(
  ROWS.map((r) => {
    const acts = ACTION_COLUMNS.map((d) => r.do[d].action);
    const tail = acts.every((a) => a === acts[0])
      ? acts[0]
      : ACTION_COLUMNS.map((d) => `${d}: ${r.do[d].action}`).join('; ');
    return [r.id, `${r.when} → ${tail}`];
  }),
);

/** The table itself, for tests that check it against the doc: id, situation, action per direction. */
export const RULE_TABLE: readonly { id: string; when: string; actions: Record<Direction, ActionType> }[] = ROWS.map(
  (r) => ({
    id: r.id,
    when: r.when,
    actions: {
      'two-way': r.do['two-way'].action,
      'send-only': r.do['send-only'].action,
      'receive-only': r.do['receive-only'].action,
    },
  }),
);

/** Decides one path: the first row of the table that matches. */
export function reconcile(i: ReconcileInput): Decision {
  const f = facts(i);
  for (const row of ROWS) {
    if (row.match(f)) {
      const out = row.do[i.direction];
      return { action: out.action, rule: row.id, why: out.why };
    }
  }
  // Unreachable: the rows cover every combination (checked by the unit tests on random inputs).
  throw new Error(`reconcile: no rule matches ${JSON.stringify(i.path)}`);
}

// ------------------------------------------------------------------ first sync (F2, F3)

/** What the first-sync pass looks at: the pair's initial-sync mode and the path's three states. */
export interface FirstSyncInput {
  /** The pair's initial-sync mode while it has never completed a sync; undefined once it has. */
  mode: InitialSyncMode | undefined;
  direction: Direction;
  base: SideState | null;
  local: SideState | null;
  remote: SideState | null;
}

/**
 * F2/F3 (docs/sync-semantics.md, "First sync"), a pass after the table: while the pair
 * has never completed a sync, a path with no base that both sides hold differently (R19)
 * is not a conflict when the pair was added with `take-server` / `take-local`: that
 * side's version wins and the other goes to its side's trash (the ordinary pull / push
 * backup). Only same-kind files and symlinks; different kinds stay a conflict.
 */
export function firstSyncPass(i: FirstSyncInput, decision: Decision): Decision {
  const { mode, base, local, remote } = i;
  if (!mode || mode === 'merge' || base || !local || !remote) return decision;
  if (local.kind !== remote.kind || local.kind === 'dir') return decision;
  if (decision.action !== 'conflict' && decision.action !== 'keep-local-aside') return decision;
  if (mode === 'take-server' && i.direction !== 'send-only')
    return {
      action: 'pull',
      rule: 'F2',
      why: "first sync, take the server's copy: this computer's version goes to the trash",
    };
  if (mode === 'take-local' && i.direction === 'two-way')
    return {
      action: 'push',
      rule: 'F3',
      why: "first sync, take the local copy: the server's version goes to its trash",
    };
  return decision;
}

// ------------------------------------------------------------------ conflict copy names

const NAME_MAX_BYTES = 255;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `YYYY-MM-DD HHMMSS` in UTC. */
function stamp(when: Date): string {
  return (
    `${pad(when.getUTCFullYear(), 4)}-${pad(when.getUTCMonth() + 1)}-${pad(when.getUTCDate())} ` +
    `${pad(when.getUTCHours())}${pad(when.getUTCMinutes())}${pad(when.getUTCSeconds())}`
  );
}

/** Drops code points from the end of `stem` until `stem + rest` fits in NAME_MAX_BYTES (keeps at least one). */
function fit(stem: string, rest: string): string {
  const restBytes = Buffer.byteLength(rest);
  let chars = Array.from(stem);
  let bytes = Buffer.byteLength(stem);
  while (bytes + restBytes > NAME_MAX_BYTES && chars.length > 1) {
    const last = chars[chars.length - 1]!;
    chars = chars.slice(0, -1);
    bytes -= Buffer.byteLength(last);
  }
  return chars.join('');
}

/**
 * The name the local version of `path` gets in a conflict (doc rules C1, C2):
 * `dir/name (conflicted copy HOST YYYY-MM-DD HHMMSS).ext`, time in UTC. The
 * extension is the part from the last dot of the base name when that dot is
 * neither its first nor its last character. When `exists` says a candidate is
 * taken, ` 2`, ` 3`, … is added inside the parentheses.
 */
export function conflictCopyName(path: string, host: string, when: Date, exists?: (p: string) => boolean): string {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  const hasExt = dot > 0 && dot < base.length - 1;
  const stem = hasExt ? base.slice(0, dot) : base;
  const ext = hasExt ? base.slice(dot) : '';
  // A host name can't be allowed to add path components.
  const safeHost = host.replace(/[/\0]/g, '-').trim() || 'unknown';
  const label = `conflicted copy ${safeHost} ${stamp(when)}`;
  for (let n = 1; n < 100_000; n++) {
    const rest = ` (${label}${n === 1 ? '' : ` ${n}`})${ext}`;
    const candidate = dir + fit(stem, rest) + rest;
    if (!exists?.(candidate)) return candidate;
  }
  throw new Error(`conflictCopyName: no free name for ${JSON.stringify(path)}`);
}
