"""An SMTP sink on 127.0.0.1 that keeps each message exactly as it
arrived: the DATA bytes with their CRLF line ends, dot-stuffing undone,
nothing added (a DKIM verifier needs the bytes the sender signed).
Usage: sink.py DIR. Prints its port, then serves connections (one
thread each) until killed. Each message is written to DIR/msg.N (a
temporary name, then renamed) before the 250 that accepts it, so when
the client has its answer the file is there."""
import os, socket, sys, threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "util"))
from smtpsink import converse, unstuff  # noqa: E402

out = sys.argv[1]
lock = threading.Lock()
count = 0

def store(data):
    global count
    with lock:
        count += 1
        n = count
    tmp = os.path.join(out, ".tmp.%d" % n)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(out, "msg.%d" % n))

def serve(conn):
    converse(conn, lambda env, lines: store(unstuff(lines)), ehlo=("sink", "8BITMIME", "SIZE 10000000"))


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
