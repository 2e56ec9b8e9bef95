"""A minimal SMTP server on 127.0.0.1 that records, for each connection,
the uid owning the client's socket (from /proc/net/tcp), then accepts
one message. It prints the port, then serves one connection and exits."""
import socket, sys

def socket_uid(port):
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                return int(fields[7])
    return -1

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, peer = srv.accept()
uid = socket_uid(peer[1])
f = conn.makefile("rb")
def say(s): conn.sendall(s.encode() + b"\r\n")
say("220 sink ready")
while True:
    line = f.readline()
    if not line:
        break
    cmd = line.strip().upper()
    if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
        say("250 sink")
    elif cmd.startswith(b"DATA"):
        say("354 go ahead")
        while f.readline() not in (b".\r\n", b""):
            pass
        say("250 ok")
    elif cmd.startswith(b"QUIT"):
        say("221 bye")
        break
    else:
        say("250 ok")
conn.close()
with open(sys.argv[1], "w") as out:
    out.write(str(uid) + "\n")
