"""The SMTP dialogue the tests' small sinks share (smtp-sink-once.py,
smtp-sink-uid.py, remote-dkim/sink.py): a 220 greeting, EHLO or HELO
answered, MAIL and RCPT taken, DATA read to the lone dot, QUIT; any
other command gets 250."""


def converse(conn, on_message, ehlo=("sink",)):
    """Serve one connection until QUIT or the client goes away.
    on_message(envelope, lines) is called for each message before the
    250 that accepts it: envelope holds the MAIL and RCPT command lines
    (stripped, as str), lines the DATA lines as they came (CRLF,
    dot-stuffed), without the ending dot."""
    f = conn.makefile("rb")

    def say(s):
        conn.sendall(s.encode() + b"\r\n")

    say("220 sink ready")
    envelope = []
    while True:
        line = f.readline()
        if not line:
            break
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO"):
            say("\r\n".join("250-" + e for e in ehlo[:-1]) + ("\r\n" if len(ehlo) > 1 else "") + "250 " + ehlo[-1])
        elif cmd.startswith(b"HELO"):
            say("250 " + ehlo[0])
        elif cmd.startswith(b"MAIL") or cmd.startswith(b"RCPT"):
            envelope.append(line.strip().decode("utf-8", "replace"))
            say("250 ok")
        elif cmd == b"DATA":
            say("354 go ahead")
            lines = []
            while True:
                l = f.readline()
                if l in (b".\r\n", b""):
                    break
                lines.append(l)
            on_message(envelope, lines)
            envelope = []
            say("250 ok")
        elif cmd.startswith(b"QUIT"):
            say("221 bye")
            break
        else:
            say("250 ok")
    conn.close()


def unstuff(lines):
    """The message's bytes with dot-stuffing undone."""
    return b"".join(l[1:] if l.startswith(b".") else l for l in lines)
