"""An SMTP sink on 127.0.0.1 that keeps each message exactly as it
arrived: the DATA bytes with their CRLF line ends, dot-stuffing undone,
nothing added (a DKIM verifier needs the bytes the sender signed).
Usage: sink.py DIR. Prints its port, then serves connections (one
thread each) until killed. Each message is written to DIR/msg.N (a
temporary name, then renamed) before the 250 that accepts it, so when
the client has its answer the file is there."""
import os, socket, sys, threading

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
    f = conn.makefile("rb")
    def say(s): conn.sendall(s.encode() + b"\r\n")
    say("220 sink ready")
    while True:
        line = f.readline()
        if not line:
            break
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO"):
            say("250-sink\r\n250-8BITMIME\r\n250 SIZE 10000000")
        elif cmd.startswith(b"HELO"):
            say("250 sink")
        elif cmd == b"DATA":
            say("354 go ahead")
            data = bytearray()
            while True:
                l = f.readline()
                if l in (b".\r\n", b""):
                    break
                if l.startswith(b"."):
                    l = l[1:]
                data += l
            store(bytes(data))
            say("250 ok")
        elif cmd.startswith(b"QUIT"):
            say("221 bye")
            break
        else:
            say("250 ok")
    conn.close()

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
