/**
 * The shared watcher of a server folder (issue 19; rules J1–J7 in docs/sync-semantics.md):
 * ONE watcher per server folder, whatever the number of clients, writing what changed to an
 * append-only journal under `.lipsync/journal/`, which every client follows from the
 * position it last read.
 *
 *   .lipsync/journal/<gen>        journal files ("generations"), numbered from the server's clock
 *                                 (seconds) when the journal was begun, then +1 each: records of
 *                                 two NUL-terminated fields, inotifywait's `%e\0%w%f\0` with the
 *                                 path relative to the root ('' is the root). A position is
 *                                 `<gen>:<byte offset>`. A file over `limit` bytes is closed and
 *                                 the next one started; only the last `keep` are kept.
 *   .lipsync/journal/owner        the token of the watcher that may write (written by its starter)
 *   .lipsync/journal/horizon      `<token> <seconds>`, rewritten at every beat (its mtime: the
 *                                 watcher is alive); the seconds: every change made before them
 *                                 is in the journal (walkwatch's BEAT, watch/walkwatch.ts)
 *   .lipsync/journal/start.lock   taken (mkdir) by the client that starts a watcher; .break to break a stale one
 *   .lipsync/journal/clients/<id> one file per following client, touched every 30 s
 *   .lipsync/journal/watcher.log  the last started watcher's stderr
 *
 * Processes on the server (`ps` shows them as `lipsync watcher ROOT`, `lipsync journal ROOT`,
 * `lipsync follower ID ROOT`): the watcher is walkwatch in BEAT mode piped into JOURNAL_PL, started
 * detached (setsid) by a client and outliving it. Every program runs with `perl -e`, its text
 * sent by the client: nothing in the journal's folder, which other server users may be able to
 * write, is ever run. Each client runs FOLLOW_PL in its own ssh
 * session, which registers the client, makes sure a watcher is alive (starting one under the
 * start lock if not), and streams the journal from the client's position, each path prefixed
 * with the client's spelling of the root, plus `POS\0<gen>:<offset>\0` records. A client whose
 * position is gone (rotated away) gets Q_OVERFLOW (it rescans). When the watcher stops beating
 * or loses its owner, every follower exits EXIT_WATCHER_GONE; its client reconnects, and the
 * first to take the start lock starts a new watcher, whose first walk lists what changed since
 * the old one's horizon (minus 2 s) into the new generation: nothing falls in the gap.
 */

import { JOURNAL_DIR, META_DIR } from '../../../shared/layout.js';
import { WALKWATCH_PL, syscallCaseScript } from '../watch/walkwatch.js';
import { absPath } from './paths.js';
import { EXIT_NO_INOTIFYWAIT, PRINT_STREAM_MARKER, requireRootScript } from './script.js';
import { shQuote } from './ssh.js';

/** Session script exit: the shared watcher cannot be used here (no perl, journal not writable, start failed). */
export const EXIT_JOURNAL_FAILED = 22;
/** Follower exit: the shared watcher stopped beating or was replaced; reconnect (resuming at the position). */
export const EXIT_WATCHER_GONE = 23;

export interface JournalTuning {
  /** Bytes after which a journal file is closed and the next one started. */
  limit: number;
  /** Journal files kept. */
  keep: number;
  /** Seconds between beats. */
  beatSec: number;
  /** A watcher whose horizon is older than this (seconds, server clock) is dead. */
  staleSec: number;
  /** The watcher stops when no client file is younger than this (seconds). */
  clientTtlSec: number;
  /**
   * Seconds a follower waits before it looks at the journal again when nothing wakes it (J7:
   * where it has no inotify instance; also the bound on a wake-up that is missed).
   */
  pollSec: number;
}

export const DEFAULT_TUNING: JournalTuning = {
  limit: 8 * 1024 * 1024,
  keep: 4,
  beatSec: 1,
  staleSec: 8,
  clientTtlSec: 90,
  pollSec: 0.05,
};

/**
 * The tuning, with LIPSYNC_JOURNAL_LIMIT (bytes: tests rotate small files) and
 * LIPSYNC_JOURNAL_POLL_MS (tests show the wake-up alone brings a change) from the environment.
 */
export function journalTuning(env: NodeJS.ProcessEnv = process.env): JournalTuning {
  const limit = Number(env.LIPSYNC_JOURNAL_LIMIT);
  const pollMs = Number(env.LIPSYNC_JOURNAL_POLL_MS);
  return {
    ...DEFAULT_TUNING,
    ...(Number.isInteger(limit) && limit > 0 ? { limit } : {}),
    ...(Number.isFinite(pollMs) && pollMs > 0 ? { pollSec: pollMs / 1000 } : {}),
  };
}

/** Whether clients share one watcher (not with LIPSYNC_SHARED_WATCHER=0: each watches alone, as before). */
export function sharedWatcherEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LIPSYNC_SHARED_WATCHER !== '0';
}

/**
 * The journal writer: reads walkwatch's records (BEAT mode) on stdin and appends them to the
 * journal. Args: J TOKEN LIMIT TTL ROOT GAP KEEP. GAP=1: the old journal's horizon is unknown,
 * so a follower crossing into this generation is told to rescan (Q_OVERFLOW). SINCE records
 * (what changed since the old horizon) become CLOSE_WRITE (a file: look at it) and
 * CLOSE_WRITE,ISDIR (a folder: compare its listing); NOSINCE becomes Q_OVERFLOW. Exits when
 * its token is no longer the owner, when no client is left, or when walkwatch ends.
 */
export const JOURNAL_PL = String.raw`
my ($J, $token, $limit, $ttl, $root, $gap, $keep) = @ARGV;
$root =~ s{/+$}{} unless $root eq "/";
$0 = "lipsync journal $root";
my $pre = $root eq "/" ? "/" : "$root/";
my ($gen, $fh, $size, $out) = (0, undef, 0, "");
sub owner_ok { open(my $f, "<", "$J/owner") or return 0; my $l = <$f> // ""; chomp $l; $l eq $token }
sub gens { opendir(my $d, $J) or return (); sort { $a <=> $b } grep { /^\d+$/ } readdir $d }
# O_WRONLY|O_CREAT|O_EXCL|O_APPEND: a generation is written by one watcher only.
sub open_gen { my $g = shift; return 0 unless sysopen($fh, "$J/$g", 1 | 64 | 128 | 1024, 0664); ($gen, $size) = ($g, 0); 1 }
sub prune { for my $x (gens()) { unlink "$J/$x" if $x <= $gen - $keep } }
sub quit { unlink "$J/owner" if owner_ok(); exit $_[0] }
sub write_out {
  while (length $out) {
    my $n = syswrite($fh, $out);
    unless (defined $n) { print STDERR "lipsync journal: writing $J/$gen: $!\n"; quit(1) }
    $size += $n; substr($out, 0, $n) = "";
  }
}
sub clients_alive {
  opendir(my $d, "$J/clients") or return 0;
  my $now = time;
  for (readdir $d) { next if /^\./; my @st = stat "$J/clients/$_"; return 1 if @st && $st[9] >= $now - $ttl }
  0;
}
my ($lastclients) = (time);
sub beat {
  my $te = shift;
  write_out();
  exit 0 unless owner_ok();
  my $t = "$J/.horizon.$$";
  if (open(my $f, ">", $t)) { print $f "$token $te\n"; close $f; rename $t, "$J/horizon" }
  my $now = time;
  if ($now - $lastclients >= 10) { $lastclients = $now; quit(0) unless clients_alive() }
}
exit 2 unless owner_ok();
my @old = gens();
# A new journal starts at the clock's seconds: a position in a journal removed since never names a file of this one.
my $g = @old ? $old[-1] + 1 : time;
until (open_gen($g)) { quit(1) if ($! + 0) != 17; $g++ }
prune();
$out = "Q_OVERFLOW\0\0" if $gap && @old;
my $in = "";
while (1) {
  my $n = sysread(STDIN, my $buf, 65536);
  unless (defined $n) { next if ($! + 0) == 4; last }
  last if $n == 0;
  $in .= $buf;
  my $p = 0;
  while ((my $a = index($in, "\0", $p)) >= 0) {
    my $b = index($in, "\0", $a + 1);
    last if $b < 0;
    my $ev = substr($in, $p, $a - $p);
    my $path = substr($in, $a + 1, $b - $a - 1);
    $p = $b + 1;
    if ($ev eq "BEAT") { beat($path); next }
    next if $ev eq "READY";
    if ($ev eq "NOSINCE" || $ev eq "Q_OVERFLOW") { $out .= "Q_OVERFLOW\0\0"; next }
    $ev = $ev eq "SINCE" ? "CLOSE_WRITE" : "CLOSE_WRITE,ISDIR" if $ev eq "SINCE" || $ev eq "SINCE,ISDIR";
    my $rel = $path eq $root ? "" : index($path, $pre) == 0 ? substr($path, length $pre) : undef;
    $out .= "$ev\0$rel\0" if defined $rel;
  }
  substr($in, 0, $p) = "";
  write_out();
  if ($size >= $limit) {
    exit 0 unless owner_ok();
    close $fh;
    quit(1) unless open_gen($gen + 1);
    prune();
  }
}
quit(3);
`;

/**
 * The follower, one per client session (shown as `lipsync follower ID ROOT`). Args: J ID ROOT POS SINCE
 * STALE BEAT LIMIT TTL KEEP POLL WW JW NR1 NR2 NR3 (POLL: seconds between looks when nothing wakes it; WW, JW: the watcher's two programs, run with `perl -e`
 * and never written to a file others could change; POS: `gen:offset` or '-'; SINCE: a marker
 * file whose mtime starts a listing of what changed since, or '-'). Prints on stdout: the
 * listing (walkwatch's SINCE/NOSINCE records), READY, then the journal's records from the
 * position (absolute paths), each batch followed by `POS\0<gen>:<offset>\0`. With both POS and
 * SINCE (a restart, J8), the listing is made only when POS is gone; with POS alone, a position
 * that is gone is an overflow. stdin is the session's: its end (the client stopped or died)
 * unregisters the client and ends the follower.
 */
export const FOLLOW_PL = String.raw`
my ($J, $id, $root, $pos, $since, $stale, $beat, $limit, $ttl, $keep, $poll, $ww, $jw, @nr) = @ARGV;
$root =~ s{/+$}{} unless $root eq "/";
$0 = "lipsync follower $id $root";
my $pre = $root eq "/" ? "/" : "$root/";
sub out { my $s = shift; while (length $s) { my $n = syswrite(STDOUT, $s); exit 0 unless defined $n; substr($s, 0, $n) = "" } }
my $held = 0; # this follower holds start.lock
my $rin = ""; vec($rin, 0, 1) = 1;
my $wake; # J7: inotify on the journal's folder, once set up below
# The shared watcher cannot serve this client (its client watches alone).
sub fail { print STDERR "lipsync: $_[0]\n"; rmdir "$J/start.lock" if $held; exit ${EXIT_JOURNAL_FAILED} }
# Not now (a full disk): the client tries again, with backoff.
sub retry { print STDERR "lipsync: $_[0]\n"; rmdir "$J/start.lock" if $held; exit ${EXIT_WATCHER_GONE} }
# The session's stdin ended (the client stopped or died): leave, whatever this follower was doing.
sub bye { rmdir "$J/start.lock" if $held; unlink "$J/clients/$id"; exit 0 }
sub mtime { my @st = stat $_[0]; @st ? $st[9] : undef }
sub line { open(my $f, "<", $_[0]) or return ""; my $l = <$f> // ""; chomp $l; $l }
sub alive {
  my $o = line("$J/owner");
  my ($t) = split / /, line("$J/horizon");
  my $m = mtime("$J/horizon");
  $o ne "" && defined $t && $t eq $o && defined $m && $m >= time - $stale;
}
# Waits (seconds) or until the journal's folder changes (J7), and leaves when the client is gone.
sub nap {
  my $r = $rin;
  vec($r, fileno($wake), 1) = 1 if $wake;
  my $k = select($r, undef, undef, $_[0]);
  return unless $k && $k > 0;
  sysread($wake, my $w, 65536) if $wake && vec($r, fileno($wake), 1);
  bye() if vec($r, 0, 1) && !sysread(STDIN, my $junk, 4096);
}
sub slurp { open(my $f, "<", $_[0]) or return ""; local $/; my $s = <$f> // ""; $s }
sub q1 { my $s = shift; $s =~ s/'/'\\''/g; "'$s'" }
sub gens { opendir(my $d, $J) or return (); sort { $a <=> $b } grep { /^\d+$/ } readdir $d }
sub start {
  my (undef, $te) = split / /, line("$J/horizon");
  my $sincearg = defined $te && $te =~ /^\d+$/ ? "\@" . ($te - 2) : "-";
  my $token = "$$-" . time . "-" . int(rand(1e9));
  my $t = "$J/.owner.$$";
  my $f;
  unless (open($f, ">", $t) && (print $f "$token\n") && close($f)) { my $e = "$!"; unlink $t; retry("cannot write in $J: $e") }
  unless (rename $t, "$J/owner") { my $e = "$!"; unlink $t; retry("cannot write $J/owner: $e") }
  my $cmd = join(" ", "perl -e", map { q1($_) } $ww, "--", $root, $sincearg, @nr, $beat) . " | " .
    join(" ", "perl -e", map { q1($_) } $jw, "--", $J, $token, $limit, $ttl, $root, $sincearg eq "-" ? 1 : 0, $keep);
  # Detached (a session of its own where setsid exists), so it outlives this client; its stderr is the log.
  my $pid = fork;
  retry("cannot start the shared watcher: $!") unless defined $pid;
  if ($pid == 0) {
    open(STDIN, "<", "/dev/null"); open(STDOUT, ">", "/dev/null");
    open(STDERR, ">", "$J/watcher.log") or open(STDERR, ">", "/dev/null");
    chdir "/";
    exec("sh", "-c", 'if command -v setsid >/dev/null 2>&1; then exec setsid sh -c "$1"; fi; exec sh -c "$1"', "sh", $cmd);
    exit 127;
  }
  my $t0 = time;
  while (1) {
    my ($h) = split / /, line("$J/horizon");
    return if defined $h && $h eq $token;
    utime undef, undef, "$J/start.lock";
    # WNOHANG: the watcher ended before its first beat.
    if (waitpid($pid, 1) == $pid) {
      my $s = slurp("$J/watcher.log"); $s =~ s/\s+$//;
      retry("the shared watcher of $root stopped while starting" . ($s eq "" ? " (is the server's disk full?)" : ": $s"))
        if $s eq "" || $s =~ /No space left on device|Disk quota exceeded/;
      fail("the shared watcher of $root stopped while starting: $s");
    }
    fail("the shared watcher of $root did not start within an hour") if time - $t0 > 3600;
    nap(0.1);
  }
}
# A start lock not touched for 30 s: its starter is gone. Broken under a second lock, so two
# clients never both break it and retake it.
sub break_stale {
  my $l = "$J/start.lock";
  my $m = mtime($l);
  return unless defined $m && $m < time - 30;
  if (mkdir "$l.break") { my $m2 = mtime($l); rmdir $l if defined $m2 && $m2 < time - 30; rmdir "$l.break" }
  else { my $b = mtime("$l.break"); rmdir "$l.break" if defined $b && $b < time - 60 }
}
{ my $cf; open($cf, ">>", "$J/clients/$id") && close($cf) or retry("cannot write $J/clients/$id: $!") }
utime undef, undef, "$J/clients/$id";
# J7: the kernel wakes this follower when a file in the journal's folder is written, begun or
# renamed into it: inotify_init1(IN_NONBLOCK|IN_CLOEXEC), a watch on $J for IN_MODIFY|IN_MOVED_TO|
# IN_CREATE (not its subfolders). Where there is none (no inotify instance left for this user:
# max_user_instances), the poll alone brings changes, $poll seconds later at most.
{
  my $ifd = syscall($nr[0], 0x800 | 0x80000);
  if ($ifd >= 0 && open($wake, "<&=", $ifd)) { undef $wake if syscall($nr[1], $ifd, $J, 0x2 | 0x80 | 0x100) < 0 }
}
my $t0 = time;
until (alive()) {
  if (mkdir "$J/start.lock") { $held = 1; start() unless alive(); rmdir "$J/start.lock"; $held = 0; last }
  break_stale();
  fail("another client has been starting the shared watcher of $root for 15 minutes") if time - $t0 > 900;
  nap(0.2);
}
my ($fh, $gen, $off);
sub open_at {
  my ($g, $o) = @_;
  open(my $f, "<", "$J/$g") or return 0;
  return 0 if $o > -s $f;
  sysseek($f, $o, 0) or return 0;
  ($fh, $gen, $off) = ($f, $g, $o);
  1;
}
sub newest_end { for (1 .. 100) { my @g = gens(); return if @g && open_at($g[-1], -s "$J/$g[-1]") } fail("no journal in $J") }
my $resumed = $pos =~ /^(\d+):(\d+)$/ && open_at($1, $2);
unless ($resumed) { newest_end(); out("Q_OVERFLOW\0\0") if $pos ne "-" && $since eq "-" }
if (!$resumed && $since ne "-") {
  # What changed since the marker (ctime, whole seconds, >=), as walkwatch's first walk lists it.
  my @m = stat $since;
  if (!@m) { out("NOSINCE\0\0") }
  else {
    my ($lim, $complete, $buf, @stack) = ($m[9], 1, "", (""));
    my @r = stat $root;
    $buf .= "SINCE,ISDIR\0$root\0" if @r && $r[10] >= $lim;
    while (@stack) {
      my $rel = pop @stack;
      my $abs = $rel eq "" ? $root : "$pre$rel";
      my $dh;
      unless (opendir($dh, $abs)) { $complete = 0 unless ($! + 0) == 2 || ($! + 0) == 20; next }
      for my $n (readdir $dh) {
        next if $n eq "." || $n eq "..";
        my $r = $rel eq "" ? $n : "$rel/$n";
        next if $r eq "${META_DIR}";
        my @s = lstat "$abs/$n";
        next unless @s;
        my $isdir = -d _;
        $buf .= ($isdir ? "SINCE,ISDIR" : "SINCE") . "\0$pre$r\0" if $s[10] >= $lim;
        push @stack, $r if $isdir;
        if (length $buf > 65536) { out($buf); $buf = "" }
      }
      closedir $dh;
    }
    out($buf);
    out("NOSINCE\0\0") unless $complete;
  }
}
out("READY\0\0POS\0$gen:$off\0");
my ($in, $drain, $lastcheck, $lasttouch) = ("", 0, time, time);
while (1) {
  my $n = sysread($fh, my $buf, 65536);
  if ($n) {
    $drain = 0;
    $in .= $buf; $off += $n;
    my ($p, $o) = (0, "");
    while ((my $a = index($in, "\0", $p)) >= 0) {
      my $b = index($in, "\0", $a + 1);
      last if $b < 0;
      my $ev = substr($in, $p, $a - $p);
      my $rel = substr($in, $a + 1, $b - $a - 1);
      $p = $b + 1;
      $o .= "$ev\0" . ($ev eq "Q_OVERFLOW" ? "" : $rel eq "" ? $root : "$pre$rel") . "\0";
    }
    substr($in, 0, $p) = "";
    out($o . "POS\0$gen:" . ($off - length $in) . "\0") if length $o;
  } else {
    my @later = grep { $_ > $gen } gens();
    if (@later) {
      # A later generation exists, so this one was complete before it: read it once more, then move on.
      if (!$drain) { $drain = 1; next }
      ($drain, $in) = (0, "");
      unless ($later[0] == $gen + 1 && open_at($gen + 1, 0)) { newest_end(); out("Q_OVERFLOW\0\0") }
      out("POS\0$gen:$off\0");
      next;
    }
    # Nothing new: wait for the journal's folder to change (J7), or look again after $poll
    # seconds (50 ms: where there is no inotify instance). Measured: at 50 ms steps an idle
    # follower spends about 1 ms of CPU a second (0.1 % of a core).
    nap($poll);
  }
  my $now = time;
  if ($now != $lastcheck) {
    $lastcheck = $now;
    exit ${EXIT_WATCHER_GONE} unless alive();
    waitpid(-1, 1); # a watcher this follower started, ended: reaped
  }
  if ($now - $lasttouch >= 30) {
    $lasttouch = $now;
    utime(undef, undef, "$J/clients/$id") or (open(my $c, ">>", "$J/clients/$id") and close $c);
  }
}
`;

export interface FollowOptions {
  clientId: string;
  /** Where to resume (`gen:offset`), or null: at the journal's end. */
  pos: string | null;
  /**
   * A marker file (absolute) whose mtime starts a listing of what changed since: without `pos`,
   * always; with it (a restart at a recorded position, J8), only when that position is gone.
   */
  sinceMarker?: string;
  tuning?: JournalTuning;
}

/**
 * The session script of a following client (see the module comment). Like the per-client
 * script (watch-inotify-ssh.ts), it requires inotifywait, so the choice between inotify and
 * poll mode stays as the probe saw it; it exits EXIT_JOURNAL_FAILED where the shared watcher
 * cannot run (no perl, an unknown machine, a journal this user cannot write).
 */
export function journalSessionScript(root: string, o: FollowOptions): string {
  const t = o.tuning ?? DEFAULT_TUNING;
  const J = absPath(root, JOURNAL_DIR);
  const since = o.sinceMarker ?? '-';
  const args = [
    J,
    o.clientId,
    root,
    o.pos ?? '-',
    since,
    t.staleSec,
    t.beatSec,
    t.limit,
    t.clientTtlSec,
    t.keep,
    t.pollSec,
  ]
    .map((a) => shQuote(String(a)))
    .join(' ');
  // `exec 3<&0` runs before the group is parsed; inside it stdin is /dev/null, fd 3 the session's stdin.
  return `exec 3<&0
{
LC_ALL=C; export LC_ALL; unset CDPATH
${requireRootScript(root)}
command -v inotifywait >/dev/null 2>&1 || { echo "lipsync: inotifywait: not found" >&2; exit ${EXIT_NO_INOTIFYWAIT}; }
${syscallCaseScript()}
if [ -z "$nr" ] || ! command -v perl >/dev/null 2>&1; then echo "lipsync: the shared watcher needs perl and a known machine ($(uname -m))" >&2; exit ${EXIT_JOURNAL_FAILED}; fi
umask 002
if ! mkdir -p -- ${shQuote(`${J}/clients`)} 2>/dev/null || [ ! -w ${shQuote(J)} ] || [ ! -w ${shQuote(`${J}/clients`)} ]; then
  printf 'lipsync: %s is not writable by the server user %s\n' ${shQuote(J)} "$(id -un 2>/dev/null)" >&2; exit ${EXIT_JOURNAL_FAILED}
fi
${PRINT_STREAM_MARKER}
exec perl -e ${shQuote(FOLLOW_PL)} -- ${args} ${shQuote(WALKWATCH_PL)} ${shQuote(JOURNAL_PL)} $nr 0<&3 3<&-
} </dev/null
`;
}
