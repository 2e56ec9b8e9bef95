# Sourced by scenarios that run a Dovecot of their own, after lib.sh
# (never the system's service): the test writes DIR/dovecot.conf with
#   base_dir = DIR/run, state_dir = DIR/run, log_path = DIR/log.fifo
# and its listeners on 127.0.0.1; dovecot_start DIR runs it in the
# foreground, waits for the master's "starting up" line (it has bound
# its listeners by then: nothing is timed), drains the rest of its log
# into DIR/dovecot.log, and stops it at exit.
dovecot_start() {
  DOVECOT_DIR=$1
  mkdir -p "$DOVECOT_DIR/run"
  mkfifo "$DOVECOT_DIR/log.fifo"
  local dfd line
  exec {dfd}<>"$DOVECOT_DIR/log.fifo"
  dovecot -c "$DOVECOT_DIR/dovecot.conf" -F 2>>"$DOVECOT_DIR/dovecot.err" {dfd}<&- &
  DOVECOT=$!
  _bg_pids+=("$DOVECOT")
  while read -r -t 60 line <&$dfd; do
    case $line in *"starting up"*) break ;; esac
  done
  case $line in *"starting up"*) ;; *) fail "Dovecot did not start: $line $(cat "$DOVECOT_DIR/dovecot.err")" ;; esac
  cat <"$DOVECOT_DIR/log.fifo" >"$DOVECOT_DIR/dovecot.log" {dfd}<&- &
  _bg_pids+=($!)
  exec {dfd}<&-
  trap 'dovecot_stop; cleanup' EXIT
}
dovecot_stop() {
  dovecot -c "$DOVECOT_DIR/dovecot.conf" stop 2>/dev/null || true
  wait "$DOVECOT" 2>/dev/null || true
}
