# Sourced by the demo and the round-trip tests: builds omail sites (each
# an OMAIL_HOME with its control files) and runs omail-smtpd for a site
# under tcpserver on a loopback port. Needs lib.sh's helpers (bg, fail).

# site NAME DOMAIN: a fresh OMAIL_HOME at $T/NAME for a host called
# DOMAIN, with its own mail spool, OCMP directory and signing key.
site() {
  local h=$T/$1
  mkdir -p "$h/control" "$h/spool" "$h/ocmp"
  echo "$2" >"$h/control/me"
  echo "$2" >"$h/control/locals"
  echo "$h/spool" >"$h/control/mailspool"
  echo "$h/ocmp" >"$h/control/ocmpdir"
  echo 1 >"$h/control/ocmpcreateuserdir"
  OMAIL_HOME=$h omail-deliver -init
  OMAIL_HOME=$h omail-pack -keygen >/dev/null 2>&1 || fail "omail-pack -keygen for $1"
}

# peer NAME ENDPOINT OTHER: site NAME takes the bundles that come from
# ENDPOINT (* for any) signed by site OTHER's key: a line in NAME's
# ocmppeers with the public key OTHER's omail-pack -keygen prints.
peer() {
  local pub
  pub=$(OMAIL_HOME=$T/$3 omail-pack -keygen 2>/dev/null) || fail "no key for $3"
  echo "$2 $pub" >>"$T/$1/control/ocmppeers"
}

# ctl NAME FILE LINE...: write a control file of site NAME.
ctl() { local h=$T/$1 f=$2; shift 2; printf '%s\n' "$@" >"$h/control/$f"; }

# freeport: a TCP port on 127.0.0.1 that nothing listens on now.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# smtpd NAME PORT RULE...: run omail-smtpd for site NAME under tcpserver
# on 127.0.0.1:PORT, with tcprules RULEs (e.g. '127.:allow,RELAYCLIENT=""').
# Returns once tcpserver listens: it says so on stderr, which we read
# through a fifo, so nothing polls or sleeps.
smtpd() {
  local name=$1 port=$2 h=$T/$1; shift 2
  printf '%s\n' "$@" >"$h/control/tcp.smtp"
  tcprules "$h/control/tcp.smtp.cdb" "$h/control/tcp.smtp.tmp" <"$h/control/tcp.smtp"
  mkfifo "$T/$name.ready"
  local fd line
  # Opened read-write, the fifo never blocks the opener, so tcpserver can
  # open it for its log before we read.
  exec {fd}<>"$T/$name.ready"
  OMAIL_HOME=$h bg tcpserver -v -RHl0 -b 128 -x "$h/control/tcp.smtp.cdb" 127.0.0.1 "$port" "$BIN/omail-smtpd" 2>"$T/$name.ready"
  read -r line <&$fd
  case $line in *status*) ;; *) fail "the SMTP listener for $name did not start: $line";; esac
  # Keep draining tcpserver's log so it never blocks on a full pipe.
  # Not through bg: a function's background command gets /dev/null as
  # its standard input, whatever the call redirected.
  cat <&$fd >"$T/$name.smtpd.log" &
  _bg_pids+=($!)
  exec {fd}<&-
}
