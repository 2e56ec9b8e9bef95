"""Speaks raw bytes to an SMTP server, for the tests that need bytes no
polite client sends.

  smtp-raw.py PORT [--tls|--hold] SCRIPT

SCRIPT is a Python bytes literal body (escapes allowed), sent in one
write after the greeting; then the client shuts down its sending side,
so the server reads end-of-file after the script. With --tls the script
is sent after EHLO and a completed STARTTLS (and the session must end
in QUIT); with --hold the sending side stays open, for a server that has
to give up by itself. Every reply line is printed; the program reads
until the server closes the connection, then prints "closed".
"""
import ast
import socket
import ssl
import sys


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return lines
        lines.append(line.decode('latin-1').rstrip('\r\n'))
        if len(line) < 4 or line[3:4] != b'-':
            return lines


def main():
    port = int(sys.argv[1])
    args = sys.argv[2:]
    use_tls = hold = False
    if args and args[0] == '--tls':
        use_tls = True
        args = args[1:]
    elif args and args[0] == '--hold':
        hold = True
        args = args[1:]
    script = ast.literal_eval('b"' + args[0].replace('"', '\\"') + '"')
    # The timeout only guards against a broken server; no test waits on it.
    s = socket.create_connection(('127.0.0.1', port), timeout=60)
    f = s.makefile('rb')
    print('\n'.join(read_reply(f)))
    if use_tls:
        s.sendall(b'EHLO raw.example\r\n')
        print('\n'.join(read_reply(f)))
        s.sendall(b'STARTTLS\r\n')
        r = read_reply(f)
        print('\n'.join(r))
        if not r or not r[-1].startswith('220'):
            sys.exit(2)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s)
        f = s.makefile('rb')
    try:
        s.sendall(script)
        if not use_tls and not hold:
            s.shutdown(socket.SHUT_WR)
    except OSError as e:
        print('send failed: %s' % e)
    while True:
        try:
            r = read_reply(f)
        except (ConnectionResetError, ssl.SSLError) as e:
            print('reset: %s' % e)
            break
        if not r:
            break
        print('\n'.join(r))
    print('closed')


main()
