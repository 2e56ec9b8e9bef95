# Sourced by the test/ocmp-* scenario tests, after test/util/lib.sh. Builds
# ocmp-tool (outbox.Put and lib/mbox from the command line) and gives
# helpers for OCMP homes, messages and counting them.

# The build uses the invoking user's Go caches: lib.sh points HOME at a
# temporary directory, where there is no module cache (and no network).
realhome=$(getent passwd "$(id -u)" | cut -d: -f6)
(cd "$ROOT" && HOME=$realhome go build -o "$T/ocmp-tool" ./test/util/ocmp-tool) || fail "building ocmp-tool"
TOOL=$T/ocmp-tool
OCMP=$T/ocmp
SPOOL=$T/mail
mkdir -p "$OCMP" "$SPOOL"

# ocmphome DIR: a fresh home whose ocmpdir and mailspool are the test's,
# with its signing key (omail-pack -keygen).
ocmphome() {
  newhome "$1"
  echo "$OCMP" >"$1/control/ocmpdir"
  echo "$SPOOL" >"$1/control/mailspool"
  OMAIL_HOME=$1 omail-pack -keygen >/dev/null 2>&1 || fail "omail-pack -keygen for $1"
}

# trust HOME ENDPOINT SIGNER_HOME: HOME (a proxy) delivers the bundles
# that arrive under ENDPOINT signed by SIGNER_HOME's key (a line in its
# ocmppeers with the key -keygen prints).
trust() {
  local pub
  pub=$(OMAIL_HOME=$3 omail-pack -keygen 2>/dev/null) || fail "no key for $3"
  echo "$2 $pub" >>"$1/control/ocmppeers"
}

# inbox ENDPOINT: the download directory where OCMP leaves what ENDPOINT
# sent, where the proxy hook takes the endpoint from (created).
inbox() { mkdir -p "$OCMP/$1/mail/download" && echo "$OCMP/$1/mail/download"; }

# putmsgs ENDPOINT FIRST LAST: outbox entries for messages tok-FIRST to
# tok-LAST, two recipients each, one with a body line that needs quoting.
putmsgs() {
  local n
  for n in $(seq "$2" "$3"); do
    printf 'From: sender@internet.example\nSubject: tok-%s\n\nFrom the body of %s\nline two\n' "$n" "$n" |
      "$TOOL" put "$1" "1700000000.$n.1.1" "sender@internet.example" "u1@$1.example" "u2@$1.example" ||
      fail "putting tok-$n"
  done
}

# times FILE N: how many times message tok-N is in FILE (mbox or queue file).
times() { grep -c "^Subject: tok-$2\$" "$1" 2>/dev/null || true; }

# once_each MBOX FIRST LAST: every message in the range exactly once.
once_each() {
  local n c
  for n in $(seq "$2" "$3"); do
    c=$(times "$1" "$n")
    [ "$c" = 1 ] || fail "tok-$n is in $1 $c times, want once"
  done
}

# uploads ENDPOINT: the bundles waiting in an endpoint's upload directory.
uploads() { find "$OCMP/$1/mail/upload" -type f | sort; }

# queued_times N: how many queued messages hold tok-N.
queued_times() { { qgrep "^Subject: tok-$1\$" || true; } | wc -l; }
