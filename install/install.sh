#!/bin/sh
# omail's installer: what `make install` and `make uninstall` run. It is
# meant to be read: every step an install takes is below, in order.
#
#   install/install.sh install
#   install/install.sh uninstall
#
# Settings come from the environment (the Makefile passes its variables):
#
#   PREFIX      programs, docs and systemd units          /usr/local
#   OMAIL_HOME  control/, queue/, service/; the programs   /var/omail
#               were built for it and cannot be moved
#   DESTDIR     a staging root put in front of every path  (none);
#               staged, no users are made and no control/me written:
#               both are listed for the installed system (postinst)
#   SENDMAIL    one more sendmail link, e.g. /usr/sbin/sendmail, where
#               cron, mutt and mail(1) look                 (none)
#   PROGS_DIR   the built programs                         build/install/bin
#
# As root it also creates the system users, gives the queue to omailq,
# makes omail-queue set-uid omailq and sets every owner and mode
# (docs/SECURITY.md says why each is what it is): OMAIL_HOME, control/
# and service/ (but its log/main) become root's even when an install
# without root made them. As anyone else it installs what it can and
# ends with the list of what root must do.
#
# It never overwrites a control file, a service's settings in env/, or a
# run script an admin has changed (the new one is put beside it as
# run.new; an unedited one is upgraded, see keep_or_put). `uninstall`
# removes the programs, links (the SENDMAIL ones install recorded in
# docdir/sendmail-links, and /usr/sbin/sendmail when it is our link),
# docs and units, and keeps the queue, control/, service/ and the users.
set -eu

PREFIX=${PREFIX:-/usr/local}
OMAIL_HOME=${OMAIL_HOME:-/var/omail}
DESTDIR=${DESTDIR:-}
SENDMAIL=${SENDMAIL:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)
PROGS_DIR=${PROGS_DIR:-$SRC/build/install/bin}
PROGS="omail-queue omail-pack omail-unpack omail-inject omail-deliver omail-smtpd"
SERVICES="omail-smtpd omail-smtpd-resident omail-deliver omail-pack"
UNITS="omail-smtpd.socket omail-smtpd.service omail-deliver.service omail-pack.service"

# The users, each with a group of its own name; none can log in.
#   omaild    omail-smtpd: talks to the network, writes nothing itself
#   omailq    owns the queue; omail-queue is set-uid to it
#   omailr    SMTP deliveries to other hosts
#   omaillog  multilog, the services' logs
USERS="omaild omailq omailr omaillog"

say() { echo "omail install: $*"; }
die() { echo "omail install: $*" >&2; exit 1; }

# Paths end up in run scripts and units: keep them to plain characters.
for v in "$PREFIX" "$OMAIL_HOME" ${SENDMAIL:+"$SENDMAIL"}; do
  case $v in
  /*) ;;
  *) die "$v: must be an absolute path" ;;
  esac
  case $v in
  *[!A-Za-z0-9._/+-]*) die "$v: only letters, digits and ._/+- please" ;;
  esac
done

bindir=$PREFIX/bin
sbindir=$PREFIX/sbin
docdir=$PREFIX/share/doc/omail
unitdir=$PREFIX/lib/systemd/system
D=$DESTDIR

if [ "$(id -u)" = 0 ]; then root=1; else root=0; fi

# What a non-root install could not do, for root to do afterwards.
later=
must() { later="$later
    $*"; }

# What a staged install (DESTDIR) leaves to the installed system, e.g. a
# package's postinst: the users, control/me, the system users' owners
# (the build host's uids are not the target's). Paths without DESTDIR.
post=
postinst() { post="$post
    $*"; }

# own OWNER:GROUP MODE PATH...: as root, set the owner and then the mode;
# otherwise note both for root (a set-uid bit set by another user would
# make the program set-uid to that user). Staged, also noted for the
# installed system, and only noted when that user is not on this host.
own() {
  o=$1 m=$2
  shift 2
  for p in "$@"; do
    # (the installed name: .omail-queue.new becomes omail-queue)
    t=$(echo "${p#"$D"}" | sed 's|/\.\([^/]*\)\.new$|/\1|')
    if [ -n "$D" ]; then postinst "chown $o $t && chmod $m $t"; fi
    if [ "$root" = 0 ]; then must "chown $o $p && chmod $m $p"; fi
  done
  if [ "$root" = 1 ] && getent passwd "${o%%:*}" >/dev/null; then
    chown -h "$o" "$@" # first: chown clears set-id bits
    chmod "$m" "$@"
  elif [ "$root" = 1 ] && [ -z "$D" ]; then
    die "no user ${o%%:*}"
  fi
}

# rootown PATH...: as root, make each root's (-h: a link is not followed);
# otherwise note it for root. What root runs or reads its settings from
# must not stay the user's who ran an earlier install without root.
rootown() {
  if [ "$root" = 1 ]; then
    chown -h root:root "$@"
  else
    must "chown -h root:root $*"
  fi
}

# subst TEMPLATE: the template with the install's paths filled in.
subst() { sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@OMAIL_HOME@|$OMAIL_HOME|g" "$1"; }

# keep_or_put NEWFILE DEST MODE: install NEWFILE as DEST (by a rename,
# so that supervise never runs half a script), unless an admin has edited
# DEST: then DEST is kept, with the new version beside it as DEST.new.
# What was installed is kept as .NAME.installed beside DEST: a DEST that
# still matches it is unedited and is replaced. Without that record (an
# install from before it existed) a DEST that differs counts as edited.
keep_or_put() {
  rec=$(dirname "$2")/.$(basename "$2").installed
  if [ -e "$2" ] && ! cmp -s "$1" "$2" && ! { [ -f "$rec" ] && cmp -s "$rec" "$2"; }; then
    install -m "$3" "$1" "$2.new"
    say "keeping $2, which differs from what was installed: this version's is $2.new"
  else
    install -m "$3" "$1" "$2.tmp"
    mv -f "$2.tmp" "$2"
    rm -f "$2.new"
  fi
  install -m 644 "$1" "$rec.tmp"
  mv -f "$rec.tmp" "$rec"
}

# ours LINK: LINK is a symbolic link to our omail-inject.
ours() { [ -L "$1" ] && case $(readlink "$1") in *omail-inject) true ;; *) false ;; esac; }

# links_to LINK TARGET: LINK is a symbolic link to exactly TARGET.
links_to() { [ -L "$1" ] && [ "$(readlink "$1")" = "$2" ]; }

# link_or_keep TARGET NAME WHAT: NAME becomes our link to TARGET, unless
# there is another mailer's NAME, which is kept: WHAT says what does its
# work. Uninstall removes NAME only when it is our link.
link_or_keep() {
  if { [ -e "$2" ] || [ -L "$2" ]; } && ! links_to "$2" "$1"; then
    say "keeping $2, another mailer's: $3"
  else
    link "$1" "$2"
  fi
}

# link TARGET NAME: NAME becomes a symbolic link to TARGET by a rename, so
# that cron never finds no sendmail at all while it is replaced.
link() {
  rm -f "$2.new"
  ln -s "$1" "$2.new"
  mv -f "$2.new" "$2"
}

# The SENDMAIL links made, one a line, for uninstall.
sendmail_record=$D$docdir/sendmail-links

users() {
  nologin=/usr/sbin/nologin
  [ -x $nologin ] || nologin=/bin/false
  if [ -n "$D" ]; then
    # Staged: the users are the installed system's to make, not this
    # (build) host's.
    for u in $USERS; do
      postinst "getent passwd $u >/dev/null || { groupadd --system $u && useradd --system --gid $u --home-dir $OMAIL_HOME --no-create-home --shell $nologin $u; }"
    done
    return
  fi
  for u in $USERS; do
    if getent passwd "$u" >/dev/null && [ "$(id -u "$u")" = 0 ]; then
      die "user $u has uid 0: it must be an unprivileged user of its own"
    fi
    if [ "$root" = 1 ]; then
      getent group "$u" >/dev/null || groupadd --system "$u" ||
        die "cannot create group $u"
      getent passwd "$u" >/dev/null ||
        useradd --system --gid "$u" --home-dir "$OMAIL_HOME" --no-create-home \
          --shell "$nologin" --comment "omail $u" "$u" ||
        die "cannot create user $u"
    elif ! getent passwd "$u" >/dev/null; then
      must "groupadd --system $u && useradd --system --gid $u --home-dir $OMAIL_HOME --no-create-home --shell $nologin $u"
    fi
  done
}

programs() {
  install -d -m 755 "$D$bindir" "$D$sbindir"
  # Each program is made complete, with its owner and mode, beside its
  # final name and then renamed over the old one: running programs keep
  # theirs, and omail-queue is never there without its set-id bits
  # (omail-smtpd would then try to write the queue itself, and fail).
  for p in $PROGS; do
    install -m 755 "$PROGS_DIR/$p" "$D$bindir/.$p.new"
  done
  # The one set-id program: it puts a message into the queue for
  # omail-smtpd (omaild) and for any user running sendmail, none of whom
  # may write the queue themselves. Set-uid omailq as qmail-queue is
  # set-uid qmailq, and set-gid omailq too, so that what it writes is
  # omailq's group's and not the caller's; not readable, as qmail's.
  if [ "$root" = 1 ]; then
    own omailq:omailq 6711 "$D$bindir/.omail-queue.new"
  else
    own omailq:omailq 6711 "$D$bindir/omail-queue"
  fi
  for p in $PROGS; do
    mv -f "$D$bindir/.$p.new" "$D$bindir/$p"
  done
  link ../bin/omail-inject "$D$sbindir/sendmail"
  # mailq and newaliases, as sendmail's and Postfix's: omail-inject run
  # as mailq lists the queue, omail-deliver run as newaliases rebuilds
  # control/aliases.cdb. Another mailer's are left alone.
  link_or_keep omail-inject "$D$bindir/mailq" "omail-inject -bp does its work"
  link_or_keep omail-deliver "$D$bindir/newaliases" "omail-deliver -newaliases does its work"
  if [ -n "$SENDMAIL" ]; then
    install -d -m 755 "$(dirname "$D$SENDMAIL")"
    link "$bindir/omail-inject" "$D$SENDMAIL"
  fi
}

# The control files: the defaults shipped in control/ (each the value a
# missing file means, so that an admin sees them), the starting points in
# install/control/ (aliases with postmaster, tcp.smtp), then `me`, then
# tcp.smtp's cdb. An existing file is never touched.
control() {
  c=$D$OMAIL_HOME/control
  # Who owned the home before: not root after an install without root,
  # whose files root takes back below (and only those: an admin gives
  # control/aliases to its alias user, servercert.pem to omaild's group).
  prev=$(stat -c %u "$D$OMAIL_HOME" 2>/dev/null || echo 0)
  install -d -m 755 "$D$OMAIL_HOME" "$c"
  rootown "$D$OMAIL_HOME" "$c"
  for f in "$SRC"/control/* "$SRC"/install/control/*; do
    n=$(basename "$f")
    case $n in *.md) continue ;; esac
    if [ -e "$c/$n" ]; then
      cmp -s "$f" "$c/$n" || say "keeping $c/$n, which differs from the default"
    else
      install -m 644 "$f" "$c/$n"
    fi
  done
  if [ -e "$c/me" ]; then
    say "keeping $c/me: $(head -n 1 "$c/me")"
  elif [ -n "$D" ]; then
    # Staged: the name is the installed host's, not the build host's.
    postinst "hostname -f >$OMAIL_HOME/control/me && chmod 644 $OMAIL_HOME/control/me    # this host's name in mail: check it"
  else
    me=$(hostname -f 2>/dev/null || hostname 2>/dev/null || true)
    if [ -n "$me" ]; then
      echo "$me" >"$c/me.tmp" && chmod 644 "$c/me.tmp" && mv "$c/me.tmp" "$c/me"
      say "wrote $c/me: $me (this host's name in mail: check it)"
    else
      must "echo HOST.NAME >$c/me    # this host's name; hostname -f said nothing"
    fi
  fi
  if [ -e "$c/tcp.smtp" ] && [ ! -e "$c/tcp.smtp.cdb" ]; then
    if command -v tcprules >/dev/null; then
      tcprules "$c/tcp.smtp.cdb" "$c/tcp.smtp.tmp" <"$c/tcp.smtp"
      chmod 644 "$c/tcp.smtp.cdb"
    else
      must "apt-get install ucspi-tcp && $bindir/omail-smtpd -cdb    # compiles $c/tcp.smtp"
    fi
  fi
  # The shipped files, me and tcp.smtp.cdb are root's, even when an
  # install without root made them first: those the earlier installer
  # (prev) owns are taken back; an owner an admin chose stays.
  names=
  for f in "$SRC"/control/* "$SRC"/install/control/* "$c/me" "$c/tcp.smtp.cdb"; do
    n=$(basename "$f")
    case $n in *.md) continue ;; esac
    [ -e "$c/$n" ] || [ -L "$c/$n" ] || continue
    if [ "$root" = 1 ]; then
      if [ "$prev" != 0 ] && [ "$(stat -c %u "$c/$n")" = "$prev" ]; then chown -h root:root "$c/$n"; fi
    else
      names="$names $c/$n"
    fi
  done
  [ -z "$names" ] || must "chown -h root:root$names"
  # omail-pack compresses with the zstd program where there is one
  # (docs/BUNDLES.md); without it, with its Go encoder: more bytes.
  command -v zstd >/dev/null ||
    say "no zstd program: omail-pack packs with its Go encoder, about 1% more bytes, and bundlecompression best needs it (apt-get install zstd)"
}

# The queue, made by omail-deliver -init (it adds only what is missing),
# given to omailq. Directories 750, files 640, the trigger fifo 600: only
# omailq and root read the mail. -h: a link put there is not followed.
queue() {
  OMAIL_HOME=$D$OMAIL_HOME "$PROGS_DIR/omail-deliver" -init
  q=$D$OMAIL_HOME/queue
  if [ -n "$D" ]; then postinst "chown -R -h omailq:omailq $OMAIL_HOME/queue"; fi
  if [ "$root" = 0 ]; then
    must "chown -R -h omailq:omailq $q"
  elif getent passwd omailq >/dev/null; then
    chown -R -h omailq:omailq "$q"
  elif [ -z "$D" ]; then
    die "no user omailq"
  fi
}

# drac/: the records of omail-smtpd -drac (relay after POP/IMAP), which
# omail-smtpd only reads. It is root's until the POP/IMAP server's hook
# user is known: the admin gives it that user (docs/omail-smtpd.md).
drac() {
  if [ -d "$D$OMAIL_HOME/drac" ]; then return; fi
  install -d -m 755 "$D$OMAIL_HOME/drac"
  rootown "$D$OMAIL_HOME/drac"
  say "made $OMAIL_HOME/drac for relay after POP/IMAP: to use it, chown it to the POP/IMAP server's post-login hook user (docs/omail-smtpd.md)"
}

# service/NAME: a daemontools service directory for each long-running
# program. Link the ones wanted into svscan's directory (e.g.
# ln -s $OMAIL_HOME/service/omail-deliver /etc/service/).
services() {
  t=$SRC/install/service
  install -d -m 755 "$D$OMAIL_HOME/service"
  tmp=$(mktemp)
  for s in $SERVICES; do
    d=$D$OMAIL_HOME/service/$s
    install -d -m 755 "$d" "$d/log"
    subst "$t/$s/run" >"$tmp"
    keep_or_put "$tmp" "$d/run" 755
    subst "$t/log-run" >"$tmp"
    keep_or_put "$tmp" "$d/log/run" 755
    if [ -d "$t/$s/env" ]; then
      install -d -m 755 "$d/env"
      for f in "$t/$s/env"/*; do
        [ -e "$d/env/$(basename "$f")" ] || install -m 644 "$f" "$d/env/"
      done
    fi
    install -d "$d/log/main"
  done
  rm -f "$tmp"
  # root's, all but the logs: svscan runs every run script as root.
  sv=$D$OMAIL_HOME/service
  if [ "$root" = 1 ]; then
    find "$sv" -path '*/log/main' -prune -o -exec chown -h root:root {} +
  else
    must "find $sv -path '*/log/main' -prune -o -exec chown -h root:root {} +"
  fi
  for s in $SERVICES; do
    own omaillog:omaillog 755 "$sv/$s/log/main"
  done
}

# systemd units, never enabled here: `systemctl enable --now
# omail-smtpd.socket omail-deliver omail-pack` when wanted.
units() {
  install -d -m 755 "$D$unitdir"
  for u in $UNITS; do
    subst "$SRC/install/systemd/$u" >"$D$unitdir/$u.tmp"
    chmod 644 "$D$unitdir/$u.tmp"
    mv "$D$unitdir/$u.tmp" "$D$unitdir/$u"
  done
}

# The documentation, laid out as in the source so that its links work.
docs() {
  install -d -m 755 "$D$docdir" "$D$docdir/docs" "$D$docdir/control"
  install -m 644 "$SRC/README.md" "$D$docdir/"
  install -m 644 "$SRC"/docs/*.md "$D$docdir/docs/"
  install -m 644 "$SRC/control/README.md" "$D$docdir/control/"
  (cd "$SRC/docs" && find examples -type d) | while read -r d; do
    install -d -m 755 "$D$docdir/docs/$d"
  done
  (cd "$SRC/docs" && find examples -type f) | while read -r f; do
    if [ -x "$SRC/docs/$f" ]; then m=755; else m=644; fi
    install -m $m "$SRC/docs/$f" "$D$docdir/docs/$f"
  done
}

# check_sendmail PATH: refuse when PATH is another mailer's sendmail.
check_sendmail() {
  if { [ -e "$1" ] || [ -L "$1" ]; } && ! ours "$1"; then
    die "$1 belongs to another mailer ($(readlink "$1" || echo a file)); remove that mailer or move it aside, then install again"
  fi
}

do_install() {
  # Checked first, so that a refusal changes nothing: a sendmail that is
  # not our link belongs to another mailer, and is not ours to replace.
  check_sendmail "$D$sbindir/sendmail"
  if [ -n "$SENDMAIL" ]; then check_sendmail "$D$SENDMAIL"; fi
  for p in $PROGS; do
    [ -x "$PROGS_DIR/$p" ] || die "$PROGS_DIR/$p: not built (make install builds it)"
  done
  # An upgrade: running services still run the old programs.
  if [ -e "$D$bindir/omail-deliver" ]; then upgrade=1; else upgrade=0; fi
  users
  programs
  control
  drac
  queue
  services
  units
  docs
  if [ -n "$SENDMAIL" ] && ! grep -qxF "$SENDMAIL" "$sendmail_record" 2>/dev/null; then
    echo "$SENDMAIL" >>"$sendmail_record"
  fi
  say "installed into ${D:-/}: programs in $bindir, home $OMAIL_HOME"
  if [ "$root" = 0 ]; then
    say "not root: no users made, no owners set, omail-queue not set-uid."
    say "root must still run:$later"
  elif [ -n "$later" ]; then
    say "still to do:$later"
  fi
  if [ -n "$post" ]; then
    say "staged: on the installed system (a package's postinst), as root, in this order:$post"
  fi
  case $unitdir in
  /usr/local/lib/systemd/system | /usr/lib/systemd/system | /lib/systemd/system) ;;
  *) say "systemd does not look in $unitdir: link the units into /etc/systemd/system to use them" ;;
  esac
  if [ "$upgrade" = 1 ]; then
    say "upgraded: restart what runs, e.g. svc -t $OMAIL_HOME/service/omail-deliver $OMAIL_HOME/service/omail-pack, or systemctl try-restart omail-deliver omail-pack omail-smtpd.socket"
  fi
  say "next: edit $OMAIL_HOME/control (control/README.md), then run the services:"
  say "  daemontools: ln -s $OMAIL_HOME/service/omail-deliver $OMAIL_HOME/service/omail-smtpd /etc/service/"
  say "  systemd:     systemctl enable --now omail-smtpd.socket omail-deliver"
}

do_uninstall() {
  for p in $PROGS; do rm -f "$D$bindir/$p"; done
  if ours "$D$sbindir/sendmail"; then rm -f "$D$sbindir/sendmail"; fi
  # The SENDMAIL links: the one named now, the ones install recorded, and
  # /usr/sbin/sendmail, each only when it is our link to this omail-inject.
  {
    if [ -n "$SENDMAIL" ]; then echo "$SENDMAIL"; fi
    if [ -f "$sendmail_record" ]; then cat "$sendmail_record"; fi
    echo /usr/sbin/sendmail
  } | while read -r l; do
    if links_to "$D$l" "$bindir/omail-inject"; then
      rm -f "$D$l"
      say "removed $D$l"
    fi
  done
  if links_to "$D$bindir/mailq" omail-inject; then rm -f "$D$bindir/mailq"; fi
  if links_to "$D$bindir/newaliases" omail-deliver; then rm -f "$D$bindir/newaliases"; fi
  for u in $UNITS; do rm -f "$D$unitdir/$u"; done
  rm -rf "$D$docdir"
  say "removed the programs, links, units and docs from $D$PREFIX"
  say "kept $D$OMAIL_HOME (queue, control, service) and the users $USERS"
}

case ${1:-} in
install) do_install ;;
uninstall) do_uninstall ;;
*) die "usage: install.sh install|uninstall" ;;
esac
