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
 * riscv64, loongarch64); elsewhere it exits 97 and inotifywait is used.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { DirtySet, type DirtySnapshot } from '../dirty.js';
import type { Excluder } from '../types.js';
import { isIgnoredPath, relativeTo, STATE_DIR, type InotifyRecord } from './inotifywait.js';

/** Exit code of the script on a machine whose syscall numbers it does not know. */
export const EXIT_UNSUPPORTED_ARCH = 97;

/** Node's process.arch values the script knows the syscall numbers of. */
const NODE_ARCHES = new Set(['x64', 'arm64', 'riscv64', 'loong64']);

/** A Perl test (for `perl -MConfig -e`) that exits 0 where the script knows the syscall numbers. */
export const PERL_ARCH_CHECK = 'exit($Config{archname} =~ /^(x86_64|aarch64|riscv64|loongarch64)-linux/ ? 0 : 1)';

export const WALKWATCH_PL = String.raw`
use strict; use Config;
my ($root, $sincearg) = @ARGV;
$root =~ s{/+$}{} unless $root eq "/";
my %NR = (x86_64 => [294, 254, 255], aarch64 => [26, 27, 28], riscv64 => [26, 27, 28], loongarch64 => [26, 27, 28]);
my ($arch) = $Config{archname} =~ /^([^-]+)-linux/;
my $nr = defined $arch ? $NR{$arch} : undef;
unless ($nr) { print STDERR "lipsync walkwatch: no inotify syscall numbers for $Config{archname}\n"; exit 97 }
my $MASK = 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x01000000 | 0x02000000;
my @NAMES = ([0x4, "ATTRIB"], [0x8, "CLOSE_WRITE"], [0x40, "MOVED_FROM"], [0x80, "MOVED_TO"], [0x100, "CREATE"],
  [0x200, "DELETE"], [0x400, "DELETE_SELF"], [0x800, "MOVE_SELF"], [0x2000, "UNMOUNT"], [0x4000, "Q_OVERFLOW"],
  [0x8000, "IGNORED"], [0x40000000, "ISDIR"]);
my $state = ($root eq "/" ? "" : $root) . "/.lipsync";
my $fd = syscall($nr->[0], 0x80000);
if ($fd < 0) { print STDERR "Couldn't initialize inotify: $!\n"; exit 1 }
open(my $in, "<&=", $fd) or do { print STDERR "Couldn't initialize inotify: $!\n"; exit 1 };
my (%path, %wd_of);
my $out = "";
my $started = 0;
sub flush_out { while (length $out) { my $n = syswrite(STDOUT, $out); exit 0 unless defined $n; substr($out, 0, $n) = "" } }
sub rec { $out .= $_[0] . "\0" . $_[1] . "\0"; flush_out() if length($out) > 65536 }
sub child { $_[0] eq "/" ? "/$_[1]" : "$_[0]/$_[1]" }
sub watch {
  my ($d) = @_;
  my $wd = syscall($nr->[1], $fd, $d, $d eq $root ? $MASK & ~0x02000000 : $MASK);
  if ($wd < 0) {
    return 0 if $!{ENOENT} || $!{ENOTDIR};
    if ($!{ENOSPC}) {
      if ($started) { print STDERR "Couldn't watch new directory $d: No space left on device\n"; return 0 }
      print STDERR "Failed to watch $d; upper limit on inotify watches reached!\n"; exit 1;
    }
    if ($started) { print STDERR "Couldn't watch new directory $d: $!\n"; return 0 }
    print STDERR "Couldn't watch $d: $!\n"; exit 1;
  }
  my $old = $path{$wd};
  delete $wd_of{$old} if defined $old && $old ne $d && ($wd_of{$old} // -1) == $wd;
  $path{$wd} = $d; $wd_of{$d} = $wd;
  return 1;
}
my ($since, $complete) = (undef, 1);
sub walk {
  my ($top, $list) = @_;
  my @stack = ($top);
  while (@stack) {
    my $d = pop @stack;
    next if $d eq $state;
    unless (watch($d)) {
      if (!$started && $d eq $root) { print STDERR "Couldn't watch $d: No such file or directory\n"; exit 1 }
      next;
    }
    if ($list && $d eq $top) { my @st = stat $d; rec("SINCE,ISDIR", $d) if @st && $st[10] >= $since }
    unless (chdir $d and opendir(my $dh, ".")) { $complete = 0 if $list && !$!{ENOENT}; next }
    else {
      while (defined(my $n = readdir $dh)) {
        next if $n eq "." || $n eq "..";
        my @st = lstat $n or next;
        my $isdir = -d _;
        rec($isdir ? "SINCE,ISDIR" : "SINCE", child($d, $n)) if $list && $st[10] >= $since;
        push @stack, child($d, $n) if $isdir;
      }
      closedir $dh;
    }
  }
  chdir "/";
}
sub under { my ($p, $top) = @_; $p eq $top || index($p, "$top/") == 0 }
sub move_tree {
  my ($from, $to) = @_;
  for my $p (grep { under($_, $from) } keys %wd_of) {
    my $wd = delete $wd_of{$p}; my $q = $to . substr($p, length $from);
    $wd_of{$q} = $wd; $path{$wd} = $q;
  }
}
sub drop_tree {
  my ($from) = @_;
  for my $p (grep { under($_, $from) } keys %wd_of) { my $wd = delete $wd_of{$p}; delete $path{$wd}; syscall($nr->[2], $fd, $wd) }
}
if ($sincearg =~ /^\@(\d+)/) { $since = $1 }
elsif ($sincearg =~ /^M(.+)$/s) { my @st = stat $1; if (@st) { $since = $st[9] } else { rec("NOSINCE", "") } }
walk($root, defined $since);
rec("NOSINCE", "") if defined $since && !$complete;
rec("READY", "");
flush_out();
$started = 1;
my %moved;
while (1) {
  my $n = sysread($in, my $buf, 262144);
  unless (defined $n) { next if $!{EINTR}; print STDERR "lipsync walkwatch: reading inotify: $!\n"; exit 1 }
  last if $n == 0;
  my $off = 0;
  while ($off + 16 <= $n) {
    my ($wd, $mask, $cookie, $len) = unpack("iIII", substr($buf, $off, 16));
    my $name = substr($buf, $off + 16, $len); $name =~ s/\0+$//;
    $off += 16 + $len;
    if ($mask & 0x4000) { rec("Q_OVERFLOW", ""); next }
    my $d = $path{$wd};
    next unless defined $d;
    if ($mask & 0x8000) { delete $path{$wd}; delete $wd_of{$d} if ($wd_of{$d} // -1) == $wd; next }
    my $p = length $name ? child($d, $name) : $d;
    if (($mask & 0x40000000) && length $name) {
      if ($mask & 0x40) { $moved{$cookie} = $p }
      elsif ($mask & 0x80) { my $old = delete $moved{$cookie}; if (defined $old) { move_tree($old, $p) } else { walk($p, 0) } }
      elsif ($mask & 0x100) { walk($p, 0) }
    }
    rec(join(",", map { $_->[1] } grep { $mask & $_->[0] } @NAMES), $p);
  }
  for my $old (values %moved) { drop_tree($old) }
  %moved = ();
  flush_out();
}
`;

/** What the first walk lists: nothing, what changed since a moment (ms), or since a marker file's mtime. */
export type WalkSince = null | { ms: number } | { markerFile: string };

/** `perl` arguments that run the script on `root` (absolute). */
export function walkwatchArgs(root: string, since: WalkSince): string[] {
  let arg = '-';
  if (since && 'ms' in since) arg = `@${Math.floor(since.ms / 1000)}`;
  else if (since) arg = `M${since.markerFile}`;
  return ['-e', WALKWATCH_PL, '--', root, arg];
}

/**
 * perl (`explicit`, else on PATH) where the script knows this machine's syscall
 * numbers and LIPSYNC_WALKWATCH is not 0; else null.
 */
export function findPerl(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
  arch: string = process.arch,
): string | null {
  if (process.platform !== 'linux' || !NODE_ARCHES.has(arch) || env.LIPSYNC_WALKWATCH === '0') return null;
  if (explicit !== undefined) return explicit;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, 'perl'), fsConstants.X_OK);
      return join(dir, 'perl');
    } catch {
      // next
    }
  }
  return null;
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
      if (rel === STATE_DIR || rel.startsWith(`${STATE_DIR}/`)) return true;
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
