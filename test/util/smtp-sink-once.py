"""A one-message SMTP server on 127.0.0.1: prints its port, takes one
message and writes its envelope (MAIL and RCPT arguments, one a line)
and then its text to the file named by the first argument, renamed into
place once complete; then exits, so that a test can `wait` for it."""
import os, socket, sys

out = sys.argv[1]
srv = socket.socket()
srv.bind(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
srv.listen(4)
print(srv.getsockname()[1], flush=True)
done = False
while not done:
    conn, _ = srv.accept()
    f = conn.makefile("rb")
    def say(s): conn.sendall(s.encode() + b"\r\n")
    say("220 sink ready")
    env, text = [], b""
    while True:
        line = f.readline()
        if not line:
            break
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
            say("250 sink")
        elif cmd.startswith(b"MAIL") or cmd.startswith(b"RCPT"):
            env.append(line.strip().decode())
            say("250 ok")
        elif cmd.startswith(b"DATA"):
            say("354 go ahead")
            while True:
                l = f.readline()
                if l in (b".\r\n", b""):
                    break
                text += l
            with open(out + ".tmp", "wb") as o:
                o.write(("\n".join(env) + "\n\n").encode() + text)
            os.rename(out + ".tmp", out)
            done = True
            say("250 ok")
        elif cmd.startswith(b"QUIT"):
            say("221 bye")
            break
        else:
            say("250 ok")
    conn.close()
