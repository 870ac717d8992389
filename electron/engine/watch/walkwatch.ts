/**
 * walkwatch: inotify driven by a small Perl program (Perl is on nearly every
 * Linux machine; Debian's perl-base is essential), here and on the server.
 * It does what `inotifywait -m -r` does, in the same output format, and one
 * thing more: the walk that puts the watches in place also lists what changed
 * since a moment (inode change time), so a restart after a clean stop walks
 * each tree once instead of twice (`inotifywait -r` stats every entry to find
 * the folders, then `find -newerct` stats every entry again).
 *
 * Correctness: a folder's watch is added before the folder is read, and each
 * entry is stat'ed after its folder's watch is in place. A change made before
 * that stat has a ctime after the moment (it is listed); one made after it is
 * seen by the watch (it is an event). Nothing falls between the two.
 *
 * Arguments: ROOT SINCE, where SINCE is `-` (list nothing), `@SECONDS`, or
 * `M` followed by a file whose mtime is the moment (the server's marker).
 * Times are whole seconds and compared with >=: a superset of find's
 * `-newerct` / `-cnewer`, never less.
 *
 * Output on stdout: records of two NUL-terminated fields, as inotifywait's
 * `--format '%e%0%w%f%0'` (so InotifyRecordParser and interpretRecord read
 * it), plus, from the first walk only:
 *  - `SINCE` / `SINCE,ISDIR` + path: changed since the moment;
 *  - `NOSINCE` + '': the listing is not complete (the marker is missing, or a
 *    folder could not be read): compare everything;
 *  - `READY` + '': every watch is in place (inotifywait's "Watches established.").
 * Errors on stderr worded as inotifywait words them (watch/limits.ts reads them):
 * "Couldn't watch X: No such file or directory", "Failed to watch X; upper limit
 * on inotify watches reached!", "Couldn't initialize inotify: …", and at run
 * time "Couldn't watch new directory X: No space left on device".
 * `ROOT/.lipsync` is never watched nor listed (inotifywait's `@ROOT/.lipsync`).
 *
 * The syscall numbers are known for x86_64 and the generic table (aarch64,
 * riscv64, loongarch64) and passed as three more arguments; elsewhere the
 * caller runs inotifywait (without them the script exits 97). The script loads
 * no module: a perl process is ~5 MB before its table of watched folders
 * (a hash by watch descriptor: descriptors only grow, so an array would too).
 */
import { DirtySet, type DirtySnapshot } from '../dirty.js';
import { searchPath } from '../proc/which.js';
import type { Excluder } from '../types.js';
import { isIgnoredPath } from '../excludes.js';
import { META_DIR, isMetaPath } from '../../../shared/layout.js';
import { relativeTo, type InotifyRecord } from './records.js';

/** Exit code of the script on a machine whose syscall numbers it does not know. */
export const EXIT_UNSUPPORTED_ARCH = 97;

/**
 * inotify_init1, inotify_add_watch and inotify_rm_watch by machine (`uname -m`), passed to
 * the script (so it loads no module to find them): x86_64's own table, and the generic one
 * (asm-generic/unistd.h) of aarch64, riscv64 and loongarch64. Their errno values agree too.
 */
export const INOTIFY_SYSCALLS: Record<string, [number, number, number]> = {
  x86_64: [294, 254, 255],
  aarch64: [26, 27, 28],
  riscv64: [26, 27, 28],
  loongarch64: [26, 27, 28],
};

/** Node's process.arch names for `uname -m`'s. */
const NODE_ARCH_MACHINE: Record<string, string> = {
  x64: 'x86_64',
  arm64: 'aarch64',
  riscv64: 'riscv64',
  loong64: 'loongarch64',
};

/** A sh `case` that sets $nr to the syscall numbers for the machine it runs on (empty where unknown). */
export function syscallCaseScript(): string {
  const arms = Object.entries(INOTIFY_SYSCALLS).map(([m, n]) => `${m}) nr='${n.join(' ')}' ;;`);
  return `case $(uname -m 2>/dev/null) in ${arms.join(' ')} *) nr= ;; esac`;
}

export const WALKWATCH_PL = String.raw`
my ($root, $sincearg, @nr) = @ARGV;
my $beat = @nr > 3 ? pop @nr : 0;
$0 = "lipsync watcher $root" if $beat;
unless (@nr == 3) { print STDERR "lipsync walkwatch: no inotify syscall numbers for this machine\n"; exit ${EXIT_UNSUPPORTED_ARCH} }
$root =~ s{/+$}{} unless $root eq "/";
my $pre = $root eq "/" ? "/" : "$root/";
my $MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x01000000 | 0x02000000;
my @NAMES = ([0x2, "MODIFY"], [0x4, "ATTRIB"], [0x8, "CLOSE_WRITE"], [0x40, "MOVED_FROM"], [0x80, "MOVED_TO"], [0x100, "CREATE"],
  [0x200, "DELETE"], [0x400, "DELETE_SELF"], [0x800, "MOVE_SELF"], [0x2000, "UNMOUNT"], [0x4000, "Q_OVERFLOW"],
  [0x8000, "IGNORED"], [0x40000000, "ISDIR"]);
my ($ENOENT, $EINTR, $ENOTDIR, $ENOSPC) = (2, 4, 20, 28);
my $fd = syscall($nr[0], 0x80000);
if ($fd < 0) { print STDERR "Couldn't initialize inotify: $!\n"; exit 1 }
open(my $in, "<&=", $fd) or do { print STDERR "Couldn't initialize inotify: $!\n"; exit 1 };
my %path;
my $out = "";
my $started = 0;
sub full { $_[0] eq "" ? $root : $pre . $_[0] }
sub child { $_[0] eq "" ? $_[1] : "$_[0]/$_[1]" }
sub flush_out { while (length $out) { my $n = syswrite(STDOUT, $out); exit 0 unless defined $n; substr($out, 0, $n) = "" } }
sub rec { $out .= $_[0] . "\0" . $_[1] . "\0"; flush_out() if length($out) > 65536 }
sub watch {
  my ($rel, $abs) = @_;
  my $wd = syscall($nr[1], $fd, $abs, $rel eq "" ? $MASK & ~0x02000000 : $MASK);
  if ($wd < 0) {
    my $e = $! + 0;
    return 0 if $e == $ENOENT || $e == $ENOTDIR;
    if ($e == $ENOSPC) {
      if ($started) { print STDERR "Couldn't watch new directory $abs: No space left on device\n"; return 0 }
      print STDERR "Failed to watch $abs; upper limit on inotify watches reached!\n"; exit 1;
    }
    if ($started) { print STDERR "Couldn't watch new directory $abs: $!\n"; return 0 }
    print STDERR "Couldn't watch $abs: $!\n"; exit 1;
  }
  $path{$wd} = $rel;
  return 1;
}
my ($since, $lim, $complete) = (undef, 0, 1);
# BEAT mode (the shared watcher, remote/journal.ts): a BEAT record at most every $beat s, whose
# path field is the horizon: the last moment the kernel's queue was seen empty, so every change
# made before it has been written out. A long walk of a new folder still beats (liveness only).
my ($te, $lastbeat, $walked) = ($^T, 0, 0);
sub beat { my $now = time; return if $now - $lastbeat < $beat; $lastbeat = $now; rec("BEAT", $te); flush_out() }
sub walk {
  my ($top, $list) = @_;
  my @stack = ($top);
  while (@stack) {
    my $rel = pop @stack;
    next if $rel eq "${META_DIR}";
    my $abs = full($rel);
    unless (watch($rel, $abs)) {
      if (!$started && $rel eq "") { print STDERR "Couldn't watch $abs: No such file or directory\n"; exit 1 }
      next;
    }
    if ($list && $rel eq $top) { my @st = stat $abs; rec("SINCE,ISDIR", $abs) if @st && $st[10] >= $since }
    unless (chdir $abs and opendir(my $dh, ".")) { $complete = 0 if $list && ($! + 0) != $ENOENT; next }
    else {
      while (defined(my $n = readdir $dh)) {
        next if $n eq "." || $n eq "..";
        lstat $n or next;
        my $isdir = -d _;
        rec($isdir ? "SINCE,ISDIR" : "SINCE", full(child($rel, $n))) if $list && -C _ <= $lim;
        push @stack, child($rel, $n) if $isdir;
        beat() if $beat && $started && !(++$walked & 1023);
      }
      closedir $dh;
    }
  }
  chdir "/";
}
sub under { my ($p, $top) = @_; $p eq $top || index($p, "$top/") == 0 }
sub move_tree {
  my ($from, $to) = @_;
  for my $wd (keys %path) { my $p = $path{$wd}; $path{$wd} = $to . substr($p, length $from) if under($p, $from) }
}
sub drop_tree {
  my ($from) = @_;
  for my $wd (keys %path) { if (under($path{$wd}, $from)) { delete $path{$wd}; syscall($nr[2], $fd, $wd + 0) } }
}
if ($sincearg =~ /^\@(\d+)/) { $since = $1 }
elsif ($sincearg =~ /^M(.+)$/s) { my @st = stat $1; if (@st) { $since = $st[9] } else { rec("NOSINCE", "") } }
# ctime >= $since, as -C _ (days before $^T, from the stat buffer): no 13-element list per entry.
$lim = ($^T - $since) / 86400 if defined $since;
walk("", defined $since);
rec("NOSINCE", "") if defined $since && !$complete;
rec("READY", "");
flush_out();
$started = 1;
beat() if $beat;
my (%moved, %wrote, %lastwrite);
my $rin = ""; vec($rin, $fd, 1) = 1;
while (1) {
  my $t0 = time;
  if ($beat) {
    my $k = select(my $r = $rin, undef, undef, $beat);
    # Nothing queued for $beat s: everything before $t0 is written out.
    if (defined $k && $k == 0) { $te = $t0; beat(); next }
    next if $k < 0;
  }
  my $n = sysread($in, my $buf, 65536);
  unless (defined $n) { next if ($! + 0) == $EINTR; print STDERR "lipsync walkwatch: reading inotify: $!\n"; exit 1 }
  last if $n == 0;
  my $off = 0;
  while ($off + 16 <= $n) {
    my ($wd, $mask, $cookie, $len) = unpack("iIII", substr($buf, $off, 16));
    my $name = substr($buf, $off + 16, $len); $name =~ s/\0+$//;
    $off += 16 + $len;
    if ($mask & 0x4000) { rec("Q_OVERFLOW", ""); next }
    my $d = $path{$wd};
    next unless defined $d;
    if ($mask & 0x8000) { delete $path{$wd}; next }
    my $p = length $name ? child($d, $name) : $d;
    if (($mask & 0x40000000) && length $name) {
      if ($mask & 0x40) { $moved{$cookie} = $p }
      elsif ($mask & 0x80) { my $old = delete $moved{$cookie}; if (defined $old) { move_tree($old, $p) } else { walk($p, 0) } }
      elsif ($mask & 0x100) { walk($p, 0) }
    }
    # A write (file still open): reported once per read, at its end, unless the file was
    # closed, deleted or moved in the same read; and at most once a second per file.
    if ($mask & 0x2) { $wrote{$p} = 1; next }
    if ($mask & 0x248) { delete $wrote{$p}; delete $lastwrite{$p} }
    my $names = join(",", map { $_->[1] } grep { $mask & $_->[0] } @NAMES);
    # A file created complete (a symlink, a hard link, a device): no CLOSE_WRITE will
    # follow, so it is reported as closed too. A plain file is open for writing.
    if (($mask & 0x100) && !($mask & 0x40000000)) {
      my @st = lstat full($p);
      $names = "CLOSE_WRITE,$names" if !@st || !-f _ || $st[3] > 1;
    }
    rec($names, full($p));
  }
  my $now = time;
  for my $p (keys %wrote) {
    next if ($lastwrite{$p} // -1) == $now;
    $lastwrite{$p} = $now;
    rec("MODIFY", full($p));
  }
  %wrote = ();
  if (keys %lastwrite > 1000) { for (keys %lastwrite) { delete $lastwrite{$_} if $lastwrite{$_} != $now } }
  for my $old (values %moved) { drop_tree($old) }
  %moved = ();
  flush_out();
  # A read that did not fill the buffer emptied the queue: what happened before $t0 is out.
  if ($beat) { $te = $t0 if $n < 65536 - 4096; beat() }
}
`;

/** What the first walk lists: nothing, what changed since a moment (ms), or since a marker file's mtime. */
export type WalkSince = null | { ms: number } | { markerFile: string };

/** The script's SINCE argument. */
export function sinceArg(since: WalkSince): string {
  if (since && 'ms' in since) return `@${Math.floor(since.ms / 1000)}`;
  return since ? `M${since.markerFile}` : '-';
}

/** `perl` arguments that run the script on `root` (absolute) on this machine (see findPerl). */
export function walkwatchArgs(root: string, since: WalkSince, arch: string = process.arch): string[] {
  const nr = INOTIFY_SYSCALLS[NODE_ARCH_MACHINE[arch] ?? ''] ?? [];
  return ['-e', WALKWATCH_PL, '--', root, sinceArg(since), ...nr.map(String)];
}

/** Whether walkwatch may be used at all (here or on the server): not with LIPSYNC_WALKWATCH=0. */
export function walkwatchEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LIPSYNC_WALKWATCH !== '0';
}

/**
 * perl (`explicit`, else on PATH) where the script knows this machine's syscall
 * numbers and walkwatch is enabled; else null.
 */
export function findPerl(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
  arch: string = process.arch,
): string | null {
  const machine = NODE_ARCH_MACHINE[arch];
  if (process.platform !== 'linux' || !machine || !INOTIFY_SYSCALLS[machine] || !walkwatchEnabled(env)) return null;
  return explicit ?? searchPath('perl', env);
}

/**
 * Collects the first walk's SINCE records into a dirty snapshot: files as
 * paths, folders as "compare this folder" (finds what was deleted or moved
 * out of it), as localChangedSince does with find's output.
 */
export class SinceCollector {
  private readonly dirty = new DirtySet();
  private incomplete = false;

  /** `excluder`: paths it ignores are left out (the server's listing; the local one is filtered later). */
  constructor(private readonly excluder?: Excluder) {}

  /** Takes one record (relative path); returns false when it is no SINCE record. */
  take(events: string[], rel: string | null): boolean {
    if (events[0] === 'NOSINCE') this.incomplete = true;
    else if (events[0] !== 'SINCE') return false;
    else if (rel !== null) {
      const isDir = events.includes('ISDIR');
      if (isMetaPath(rel)) return true;
      if (this.excluder && isIgnoredPath(rel, isDir, this.excluder)) return true;
      if (isDir) this.dirty.markDir(rel);
      if (rel !== '') this.dirty.addPath(rel);
    }
    return true;
  }

  /** The listing, or null when it is incomplete (the caller compares everything). */
  result(): DirtySnapshot | null {
    const snap = this.dirty.take();
    return this.incomplete || snap.full ? null : snap;
  }
}

/**
 * Takes walkwatch's first-walk records (SINCE, NOSINCE, READY) out of a batch
 * into `collector` (when one listens); the other records (events) pass through.
 * inotifywait prints none of these, so the same stream code reads both.
 */
export function takeWalkRecords(
  records: InotifyRecord[],
  root: string,
  collector: SinceCollector | null,
): { ready: boolean; rest: InotifyRecord[] } {
  let ready = false;
  const rest: InotifyRecord[] = [];
  for (const rec of records) {
    const kind = rec.events[0];
    if (kind === 'READY') ready = true;
    else if (kind === 'SINCE' || kind === 'NOSINCE') collector?.take(rec.events, relativeTo(rec.path, root));
    else rest.push(rec);
  }
  return { ready, rest };
}
