"""A one-message SMTP server on 127.0.0.1: prints its port, takes one
message and writes its envelope (MAIL and RCPT arguments, one a line)
and then its text to the file named by the first argument, renamed into
place once complete; then exits, so that a test can `wait` for it."""
import os, socket, sys

from smtpsink import converse

out = sys.argv[1]
srv = socket.socket()
srv.bind(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
srv.listen(4)
print(srv.getsockname()[1], flush=True)
done = []


def keep(env, lines):
    with open(out + ".tmp", "wb") as o:
        o.write(("\n".join(env) + "\n\n").encode() + b"".join(lines))
    os.rename(out + ".tmp", out)
    done.append(True)


while not done:
    conn, _ = srv.accept()
    converse(conn, keep)
