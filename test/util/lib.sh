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
cp -al "$TESTBIN" "$T/bin" 2>/dev/null || cp -a "$TESTBIN" "$T/bin"
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
count() { find "$1" -mindepth 1 -maxdepth 1 | wc -l; }

# queued: number of committed messages in the queue.
queued() { echo $(( $(count "$OMAIL_HOME/queue/todo") + $(count "$OMAIL_HOME/queue/info") )); }
