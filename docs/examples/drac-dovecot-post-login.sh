#!/bin/sh
# Dovecot post-login script (drac-dovecot.conf): after every POP3 or
# IMAP login, let the address the user came from relay through
# omail-smtpd for control/dracexpiry seconds (default 1800). Dovecot
# sets $IP to the client's address. A failure to record is logged and
# does not stop the login. Install as /usr/local/libexec/omail-drac-login,
# mode 755; the user it runs as (drac-dovecot.conf) must be able to
# write /var/omail/drac/.
/usr/local/bin/omail-smtpd -drac "$IP" || echo "omail-drac: could not record $IP" >&2
exec "$@"
