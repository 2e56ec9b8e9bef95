# Sourced by the test/smtpd-* scenario tests, after test/util/lib.sh: starts
# omail-smtpd under a real tcpserver -RHl0 with a real tcprules cdb on
# 127.0.0.1, and small helpers for its clients.
SMTPD_UTIL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# rules TEXT: write tcp.smtp and compile it with tcprules, as an admin
# would; tcpserver reads the cdb afresh for every connection.
rules() {
  printf '%s\n' "$1" >"$T/tcp.smtp"
  tcprules "$T/tcp.smtp.cdb" "$T/tcp.smtp.tmp" <"$T/tcp.smtp" || fail "tcprules"
}

# start_smtpd [ARGS...]: run tcpserver on a free port of 127.0.0.1 and
# set PORT. tcpserver -1 prints the port once it listens: we read it
# from a fifo, so there is nothing to wait for after that.
start_smtpd() {
  [ -e "$T/tcp.smtp.cdb" ] || rules ':allow'
  rm -f "$T/port.fifo"; mkfifo "$T/port.fifo"
  # Not through bg: its redirections would be opened by this shell,
  # which would block opening the fifo before anyone reads it.
  tcpserver -1 -RHl0 -x "$T/tcp.smtp.cdb" 127.0.0.1 0 omail-smtpd "$@" >"$T/port.fifo" 2>>"$T/smtpd.log" &
  _bg_pids+=($!)
  read -r PORT <"$T/port.fifo" || fail "the SMTP listener did not start: $(cat "$T/smtpd.log")"
  export PORT
}

# swaks_to RCPT [swaks options...]: one message by swaks to our server,
# output in $T/swaks.out; returns swaks' exit code.
swaks_to() {
  local rcpt=$1 rc=0; shift
  swaks --server 127.0.0.1 --port "$PORT" --helo client.example --from sender@client.example \
    --to "$rcpt" --header "Subject: test to $rcpt" "$@" >"$T/swaks.out" 2>&1 || rc=$?
  return $rc
}

# listq: the queue as omail-inject -bp shows it.
listq() { omail-inject -bp 2>&1 || true; }

# raw: python helper speaking raw bytes (see smtp-raw.py).
raw() { python3 "$SMTPD_UTIL/smtp-raw.py" "$PORT" "$@"; }
