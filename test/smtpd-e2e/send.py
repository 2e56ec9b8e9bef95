"""smtplib client: one message with a dot-stuffed line and 8-bit text,
through STARTTLS-less plain SMTP. Exit 0 when the server took it."""
import smtplib
import sys

port = int(sys.argv[1])
msg = ('Subject: end to end\r\nContent-Type: text/plain; charset=utf-8\r\n'
       'Content-Transfer-Encoding: 8bit\r\n\r\n'
       'first line\r\n.starts with a dot\r\nd\u00e9j\u00e0 vu\r\n').encode('utf-8')
with smtplib.SMTP('127.0.0.1', port, local_hostname='mua.example', timeout=60) as s:
    refused = s.sendmail('alice@client.example', ['kioskuser@test.example'], msg,
                         mail_options=['BODY=8BITMIME'])
    sys.exit(1 if refused else 0)
