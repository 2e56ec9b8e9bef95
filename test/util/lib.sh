# Sourced by every scenario test. Gives a private OMAIL_HOME under a temp
# directory, the built binaries on PATH, and small assertion helpers.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The programs under test: bin/ as `make build` leaves it, or another
# directory of them in OMAIL_TEST_BIN (`make cover` points it at
# coverage-instrumented builds).
TESTBIN=${OMAIL_TEST_BIN:-$ROOT/bin}
[ -x "$TESTBIN/omail-queue" ] || { echo "FAIL: no built programs in $TESTBIN (make build)" >&2; exit 1; }
T=$(mktemp -d /tmp/omail-test.XXXXXX)
# As root, omail-deliver runs local and SMTP deliveries as other users
# (the recipient, nobody), who must be able to reach the test's files and
# run omail-deliver itself: the checkout may sit in a directory only root
# can enter, so the tests run a copy of $TESTBIN (hard links where possible).
chmod 755 "$T"
# A link copy that fails half-way (another user's files, another file
# system) is removed first, or cp -a would copy into $T/bin/bin.
cp -al "$TESTBIN" "$T/bin" 2>/dev/null || { rm -rf "$T/bin"; cp -a "$TESTBIN" "$T/bin"; }
chmod 755 "$T/bin"
BIN=$T/bin
export PATH="$BIN:$PATH"
export OMAIL_HOME=$T/home
# Never let a test's mail client or tool read the invoking user's files.
export HOME=$T/userhome
mkdir -p "$HOME"
_bg_pids=()
cleanup() {
  local p
  for p in "${_bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && { echo "kept $T"; return; }
  rm -rf "$T" 2>/dev/null || { sleep 0; rm -rf "$T" 2>/dev/null || true; }
}
trap cleanup EXIT

# bg CMD...: run in the background, killed at exit.
bg() { "$@" & _bg_pids+=($!); }

fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "--- $*"; }

# newhome [dir]: a fresh OMAIL_HOME with control/me and an empty queue.
newhome() {
  local h=${1:-$OMAIL_HOME}
  mkdir -p "$h/control"
  echo test.example >"$h/control/me"
  OMAIL_HOME=$h omail-deliver -init
}

# expect_exit CODE CMD...: run CMD, fail unless it exits CODE.
expect_exit() {
  local want=$1; shift
  set +e; "$@"; local got=$?; set -e
  [ "$got" = "$want" ] || fail "exit $got, want $want: $*"
}

# contains FILE TEXT: fail unless FILE holds TEXT (fixed string).
contains() { grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$1 lacks: $2"; }; }
lacks() { ! grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$1 holds: $2"; }; }

# count DIR: number of entries in DIR.
# await FILE TEXT: until FILE holds a line with TEXT, read as it grows
# (tail -F: nothing sleeps), for at most 60 seconds; else show FILE and
# fail. FILE may not exist yet.
await() {
  local fd pid
  exec {fd}< <(exec timeout 60 tail -n +1 -F "$1" 2>/dev/null)
  pid=$!
  if grep -q -m1 -F -- "$2" <&$fd; then
    kill "$pid" 2>/dev/null || true
    exec {fd}<&-
    return 0
  fi
  exec {fd}<&-
  echo "--- $1:"; cat "$1" 2>/dev/null || true
  fail "never logged in $1: $2"
}
count() { find "$1" -mindepth 1 -maxdepth 1 | wc -l; }

# queued: number of committed messages in the queue.
queued() { echo $(( $(count "$OMAIL_HOME/queue/todo") + $(count "$OMAIL_HOME/queue/info") )); }

# Reading the queue as docs/INTERNALS.md lays it out: a committed message
# is todo/ID, the message followed by its state and a 29-byte footer
# ("OMQ2", the lengths of both in hex, a newline), until a deliverer
# takes it apart into mess/ID and info/ID. [HOME] defaults to OMAIL_HOME.

# qids [HOME]: the ids of the queued messages, oldest first.
qids() {
  local h=${1:-$OMAIL_HOME}
  ls "$h/queue/todo" "$h/queue/info" | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' |
    sort -u -t. -k1,1n -k2,2n -k3,3n -k4,4n || true
}
# _qfooter FILE: the footer of a single-file entry, or nothing.
_qfooter() { local f; f=$(tail -c 29 "$1" 2>/dev/null) || return 0; [ "${f:0:4}" = OMQ2 ] && echo "$f" || true; }
# qmsg ID [HOME]: the queued message's bytes.
qmsg() {
  local h=${2:-$OMAIL_HOME} f
  f=$(_qfooter "$h/queue/todo/$1")
  if [ -n "$f" ]; then head -c $((16#${f:4:16})) "$h/queue/todo/$1"; else cat "$h/queue/mess/$1"; fi
}
# qenv ID [HOME]: the queued message's state records, one per line.
qenv() {
  local h=${2:-$OMAIL_HOME} f
  f=$(_qfooter "$h/queue/todo/$1")
  if [ -n "$f" ]; then
    tail -c $((16#${f:20:8} + 29)) "$h/queue/todo/$1" | head -c $((16#${f:20:8})) | tr '\0' '\n'
  elif [ -e "$h/queue/info/$1" ]; then tr '\0' '\n' <"$h/queue/info/$1"
  else tr '\0' '\n' <"$h/queue/todo/$1"; fi
}
# qsettled ID [HOME]: wait until no deliverer is working on message ID.
# An attempt logs each delivery before it writes the message's state
# (as qmail-send does), and holds its lock on the message file from
# before the first line it logs until after the state is written; so a
# scenario that has read a delivery line of ID from the daemon's log and
# then reads the queue (mailq, qenv) waits for that lock first. The lock
# is taken shared and let go at once; a daemon's own attempt that found
# it taken would wait a minute, so call this only when the attempt's
# outcome leaves the message not due again (deferred, held, waiting for
# a flush). No message file: the message is finished, or no deliverer
# has taken it yet.
qsettled() {
  local f=${2:-$OMAIL_HOME}/queue/mess/$1 fd
  { exec {fd}<"$f"; } 2>/dev/null || return 0
  flock -s "$fd"
  exec {fd}<&-
}
# qgrep [-q] PATTERN [HOME]: the ids of queued messages with a line
# matching the extended regular expression (-q: only the exit status).
qgrep() {
  local quiet= id found=1
  [ "$1" = -q ] && { quiet=1; shift; }
  for id in $(qids "${2:-}"); do
    if grep -qE -- "$1" <(qmsg "$id" "${2:-}"); then
      found=0; [ -n "$quiet" ] && return 0; echo "$id"
    fi
  done
  return $found
}
