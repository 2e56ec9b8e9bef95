"""A one-message SMTP sink on 127.0.0.1 that offers SMTPUTF8 and
8BITMIME (test/util/smtp-sink-once.py offers neither): prints its port,
takes one message and writes its envelope lines, an empty line and its
bytes (dot-stuffing undone) to the file named by the first argument,
renamed into place once complete, then exits."""
import os, socket, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "util"))
from smtpsink import converse, unstuff  # noqa: E402

out = sys.argv[1]
srv = socket.socket()
srv.bind(("127.0.0.1", int(sys.argv[2])))
srv.listen(4)
print(srv.getsockname()[1], flush=True)
done = []


def keep(env, lines):
    with open(out + ".tmp", "wb") as o:
        o.write(("\n".join(env) + "\n\n").encode() + unstuff(lines))
    os.rename(out + ".tmp", out)
    done.append(True)


while not done:
    conn, _ = srv.accept()
    converse(conn, keep, ehlo=("sink", "8BITMIME", "SMTPUTF8"))
