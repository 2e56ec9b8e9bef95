# Sourced by test/fault-inject and test/crash-every-point, after lib.sh:
# the list of crash and fault points as lib/crashpoint/points.go has it
# (one Go file, which a unit test keeps in step with the code), a
# snapshot of a directory tree to compare before and after a fault, and
# the home both drive: local users with an mbox and a Maildir (as
# test/deliver-crash), a forward, and counting what they received.
BOXCOUNT=$ROOT/test/util/boxcount.py

# points KIND...: the names of the points of those kinds (step, fileop,
# resume, write, undo), in the list's order.
points() {
  local kinds=" $* "
  sed -n 's/^\t{"\([a-z0-9-]*\)", \(Step\|FileOp\|Resume\|Write\|Undo\), .*/\1 \2/p' "$ROOT/lib/crashpoint/points.go" |
    while read -r name kind; do
      kind=$(echo "$kind" | tr 'A-Z' 'a-z')
      case $kinds in *" $kind "*) echo "$name";; esac
    done
}
[ "$(points step fileop resume write undo | wc -l)" -gt 50 ] || fail "cannot read the points from lib/crashpoint/points.go"

# snap DIR: every entry under DIR with its type, and each file's sha1:
# two snaps are equal when the tree is byte-identical.
snap() {
  (cd "$1" && find . -printf '%y %p\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha1sum)
}

# faults_home: the home (OMAIL_HOME, C): dana and fay (spool mboxes),
# rootmd (a Maildir), fwd (forwards to fay); as root also erin and nobmd,
# delivered by resident children as nobody.
faults_home() {
  newhome
  C=$OMAIL_HOME/control
  echo test.example >"$C/rcpthosts"
  mkdir -p "$T/spool" && chmod 1777 "$T/spool"
  echo "$T/spool" >"$C/mailspool"
  install -m 600 /dev/null "$T/spool/dana"
  ME=$(id -un); MYUID=$(id -u); MYGID=$(id -g)
  mkdir -p "$OMAIL_HOME/users" "$T/rhome/Maildir/"{tmp,new,cur} "$T/fhome"
  chmod 755 "$T/rhome" "$T/fhome"
  echo ./Maildir/ >"$T/rhome/.omail"
  install -m 600 /dev/null "$T/spool/fay"
  printf '&fay@test.example\n' >"$T/fhome/.omail"
  {
    echo "=rootmd:$ME:$MYUID:$MYGID:$T/rhome:::"
    echo "=fwd:$ME:$MYUID:$MYGID:$T/fhome:::"
    if [ "$MYUID" = 0 ]; then echo "=nobmd:nobody:65534:65534:$T/nhome:::"; fi
    echo .
  } >"$OMAIL_HOME/users/assign"
  if [ "$MYUID" = 0 ]; then
    install -m 600 -o 65534 -g 65534 /dev/null "$T/spool/erin"
    mkdir -p "$T/nhome/Maildir/"{tmp,new,cur}
    echo ./Maildir/ >"$T/nhome/.omail"
    chown -R 65534:65534 "$T/nhome"
    chmod 755 "$T/nhome"
  fi
}

# box_of USER: KIND PATH of the user's mailbox.
box_of() { case $1 in dana | erin | fay) echo "mbox $T/spool/$1";; rootmd) echo "maildir $T/rhome/Maildir";;
  nobmd) echo "maildir $T/nhome/Maildir";; esac; }

n=0 msgs=0
message() { # message: the next test message on stdout (big enough to tear)
  n=$((n + 1)); msgs=$((msgs + 1))
  printf 'Subject: fault %s\n\n' "$n"
  seq 1 400 | sed 's/^/line /'
  printf 'From a line start\nend.\n'
}
queue_for() { # queue_for RCPT: queue the next message for RCPT@test.example
  message >"$T/msg"
  printf 'Fsender@test.example\0T%s@test.example\0\0' "$1" >"$T/env"
  omail-queue <"$T/msg" 3<"$T/env" 1<&3 || fail "queueing for $1"
}
# once BOX SUBJECT: SUBJECT is in the mailbox (KIND PATH) exactly once, whole.
once() {
  local got; got=$(python3 "$BOXCOUNT" $1 | grep -F -x -- "1 $2" || true)
  [ -n "$got" ] || { python3 "$BOXCOUNT" $1; fail "\"$2\" is not in $1 exactly once"; }
  ! python3 "$BOXCOUNT" $1 | grep -q " torn: $2\$" || fail "a torn \"$2\" in $1"
}
clean_queue() {
  [ "$(queued)" = 0 ] || { tail -20 "$T/log"; fail "queue not empty"; }
  [ "$(count "$OMAIL_HOME/queue/corrupt")" = 0 ] || fail "something in corrupt/"
}
