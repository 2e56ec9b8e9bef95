# An SMTP server that takes one recipient per transaction (452 4.5.3
# for the others) and never answers the end of data of a connection's
# second transaction: a slow server. Prints its port, then logs what it
# accepted and when it holds, one line each, to argv[1].
import socket
import sys

log = open(sys.argv[1], "a", buffering=1)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(5)
print(srv.getsockname()[1], flush=True)
held = []  # connections kept open unanswered until we are killed
while True:
    conn, _ = srv.accept()
    rd = conn.makefile("rb")

    def reply(text):
        conn.sendall(text.encode() + b"\r\n")

    reply("220 sink ESMTP")
    txn, rcpts = 0, []
    while True:
        line = rd.readline()
        if not line:
            break
        cmd = line.decode("latin-1").rstrip("\r\n")
        verb = cmd[:4].upper()
        if verb == "EHLO":
            reply("250-sink\r\n250 PIPELINING")
        elif verb == "MAIL":
            txn, rcpts = txn + 1, []
            reply("250 ok")
        elif verb == "RCPT":
            if rcpts:
                reply("452 4.5.3 too many recipients")
            else:
                rcpts.append(cmd[8:])
                reply("250 ok")
        elif verb == "DATA":
            reply("354 go")
            while rd.readline().rstrip(b"\r\n") != b".":
                pass
            if txn == 1:
                log.write("accepted transaction 1 for %s\n" % rcpts[0])
                reply("250 2.0.0 queued")
            else:
                log.write("holding transaction %d for %s\n" % (txn, rcpts[0]))
                held.append(conn)
                break
        elif verb == "QUIT":
            reply("221 bye")
            break
        else:
            reply("250 ok")
