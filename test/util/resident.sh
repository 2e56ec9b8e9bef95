# Sourced by the test/smtpd-resident-* scenario tests, after util/lib.sh
# and util/sites.sh: a home for the resident omail-smtpd, and the Python
# helpers (util/resident.py) that run it and talk to it.
RESIDENT_UTIL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH=$RESIDENT_UTIL${PYTHONPATH:+:$PYTHONPATH}

# resident_home: a fresh OMAIL_HOME taking mail for us.example. As root,
# omail-smtpd must serve as another user (-u nobody): the queue is made
# that user's, as omail-queue's owner would be in an installed system,
# where omail-smtpd runs the set-id omail-queue instead.
resident_home() {
  newhome
  echo us.example >"$OMAIL_HOME/control/rcpthosts"
  if [ "$(id -u)" = 0 ]; then
    chown -R nobody "$OMAIL_HOME/queue"
  fi
}

# servercert FILE CN: a self-signed certificate and its key in one PEM
# file, readable by the user omail-smtpd serves as.
servercert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null || fail "openssl req"
  cat "$T/cert.pem" "$T/key.pem" >"$1.tmp"
  chmod 644 "$1.tmp"
  mv "$1.tmp" "$1"
}
