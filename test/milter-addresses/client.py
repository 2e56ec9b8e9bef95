# One SMTP session to Postfix on 127.0.0.1:PORT: one message per RCPT
# argument given (each also to EXTRA when that is not "-"), the argument
# sent as it is. Prints "SUBJECT QUEUEID" per message accepted.
import smtplib, sys

port, extra, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = smtplib.SMTP('127.0.0.1', port)
s.ehlo('client.test.example')
for i, r in enumerate(rcpts):
    subject = 'addr%d' % i
    code, text = s.docmd('MAIL FROM:<a@other.example>')
    assert code == 250, (code, text)
    code, text = s.docmd('RCPT TO:' + r)
    assert code == 250, (r, code, text)
    if extra != '-':
        code, text = s.docmd('RCPT TO:<%s>' % extra)
        assert code == 250, (extra, code, text)
    msg = ('Subject: %s\r\nFrom: a@other.example\r\n\r\nbody of %s\r\n' % (subject, subject)).encode()
    code, text = s.data(msg)
    assert code == 250, (subject, code, text)
    print(subject, text.decode().rsplit(' ', 1)[-1])
s.quit()
