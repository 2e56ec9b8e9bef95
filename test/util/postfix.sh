# Sourced by the milter-* scenarios, after util/lib.sh: a private Postfix
# instance on loopback with omail-smtpd -milter as its smtpd_milters.
#
# Postfix runs from its own config directory $PF/etc with its own queue
# directory under $T, every service out of chroot, one smtpd on
# 127.0.0.1:$PFPORT, no DNS (disable_dns_lookups, smtp_dns_support_level
# = disabled, smtp_host_lookup = native with a loopback relayhost given
# as [IP]), started by `postfix -c` as root and stopped at exit: never
# the system's postfix service. Postfix relays whatever it keeps for
# kiosk.example and other.example to $SINKPORT (a one-message sink the
# scenario may start there, or nothing: then it stays queued, deferred).
[ "$(id -u)" = 0 ] || fail "the milter scenarios need root: Postfix's master runs as root"
PF=$T/pf
PFPORT=$(freeport)
SINKPORT=$(freeport)
MILTERPORT=$(freeport)

# pf_setup: write the instance's main.cf and master.cf.
pf_setup() {
  mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
  chown postfix:postfix "$PF/data"
  awk -v port="$PFPORT" '
    /^smtp +inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
    /^[a-z0-9]/ && NF >= 8 { $5 = "n" }
    { print }' /etc/postfix/master.cf >"$PF/etc/master.cf"
  cat >"$PF/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test.example
mydomain = test.example
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
relay_domains = kiosk.example, other.example
relayhost = [127.0.0.1]:$SINKPORT
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_milters = inet:127.0.0.1:$MILTERPORT
milter_default_action = tempfail
milter_protocol = 6
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
CF
}

pf_start() { postfix -c "$PF/etc" start >/dev/null 2>&1 || { tail "$PF/maillog" >&2; fail "postfix did not start"; }; }

# pf_stop: stop the instance and wait for its master to be gone.
pf_stop() {
  local pid
  [ -e "$PF/spool/pid/master.pid" ] || return 0
  pid=$(tr -d ' ' <"$PF/spool/pid/master.pid")
  postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
  [ -n "$pid" ] && tail --pid="$pid" -f /dev/null
  return 0
}
trap 'pf_stop; cleanup' EXIT

# pf_queue FILE: Postfix's queue listing (postqueue -p) into FILE.
pf_queue() { postqueue -c "$PF/etc" -p >"$1" 2>&1 || true; }

# start_milter: omail-smtpd -milter on $MILTERPORT as nobody (the queue
# is made nobody's, as omail-queue's owner would be installed); returns
# once it says it listens. Its log goes on to $T/milter.log.
start_milter() {
  chown -R nobody "$OMAIL_HOME/queue"
  local fd line
  rm -f "$T/milter.fifo"
  mkfifo "$T/milter.fifo"
  exec {fd}<>"$T/milter.fifo"
  bg omail-smtpd -milter "inet:$MILTERPORT@127.0.0.1" -u nobody 2>"$T/milter.fifo"
  MILTERPID=$!
  read -r -t 60 line <&$fd || fail "omail-smtpd -milter said nothing"
  case $line in *"milter listening on inet:$MILTERPORT@127.0.0.1"*) ;; *) fail "omail-smtpd -milter did not start: $line" ;; esac
  # Drain the rest into milter.log, through a read-only open of the
  # fifo, so that cat ends when the milter does. (Not through bg: a
  # function's background command gets /dev/null as its stdin.)
  cat <"$T/milter.fifo" >>"$T/milter.log" {fd}<&- &
  MILTERLOG=$!
  _bg_pids+=("$MILTERLOG")
  exec {fd}<&-
}

# stop_milter: SIGTERM, and wait for it to exit 0.
stop_milter() {
  kill -TERM "$MILTERPID"
  local rc=0
  wait "$MILTERPID" || rc=$?
  [ "$rc" = 0 ] || fail "omail-smtpd -milter exited $rc after SIGTERM"
  wait "$MILTERLOG" || true
}

# send TO... : swaks to Postfix from a@other.example, to each TO, with a
# Subject naming the scenario; its dialogue into $T/swaks.out. The exit
# code is swaks' (0 only when the message was accepted).
send() {
  local to; to=$(IFS=,; echo "$*")
  swaks --server "127.0.0.1:$PFPORT" --ehlo client.test.example --from a@other.example --to "$to" \
    --header "Subject: $SUBJECT" --body "body of $SUBJECT" >"$T/swaks.out" 2>&1
}

# start_sink: the one-message sink on $SINKPORT, writing $T/sink.out.
start_sink() {
  local fd line
  rm -f "$T/sink.fifo"
  mkfifo "$T/sink.fifo"
  exec {fd}<>"$T/sink.fifo"
  python3 "$ROOT/test/util/smtp-sink-once.py" "$T/sink.out" "$SINKPORT" >"$T/sink.fifo" &
  SINKPID=$!
  _bg_pids+=("$SINKPID")
  read -r -t 60 line <&$fd || fail "the sink did not start"
  exec {fd}<&-
}
