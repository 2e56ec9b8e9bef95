"""Helpers for the resident omail-smtpd scenario tests: run it, read its
log lines as they come (the notifications the tests wait on: nothing
here sleeps), and talk SMTP to it from a chosen loopback address."""
import os
import re
import smtplib
import socket
import subprocess
import sys
import threading

# How long any one wait may take before the test gives up: a safety net
# against a hang, never a measurement.
LIMIT = 120

# As root, omail-smtpd refuses to serve without -u.
USER = ["-u", "nobody"] if os.geteuid() == 0 else []


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def say(msg):
    print("--- " + msg, flush=True)


class Server:
    """omail-smtpd (or anything else) with its stderr read line by line."""

    def __init__(self, args, env=None, stdout=None, pass_fds=()):
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        self.p = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=stdout, env=env,
                                  text=True, pass_fds=pass_fds)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pattern, start=0):
        """Index of the first log line from start on matching pattern."""
        rx = re.compile(pattern)
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return i
                    i += 1
                if self.eof:
                    fail("log ended without %r:\n%s" % (pattern, self.log()))
                if not self.cond.wait(LIMIT):
                    fail("no log line %r:\n%s" % (pattern, self.log()))

    def mark(self):
        with self.cond:
            return len(self.lines)

    def log(self):
        with self.cond:
            return "\n".join(self.lines)

    def ports(self, n=1):
        """The ports of the first n listeners, from the start-up lines."""
        out, i = [], 0
        for _ in range(n):
            i = self.wait_for(r"listening on ", i)
            addr = re.search(r"listening on (\S+?)(?:,| )", self.lines[i]).group(1)
            out.append(int(addr.rsplit(":", 1)[1]))
            i += 1
        return out

    def stop(self, sig=15):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        return self.p.wait(LIMIT)


def resident(*args, env=None):
    """omail-smtpd -listen 127.0.0.1:0 with args, started and listening."""
    s = Server(["omail-smtpd", "-listen", "127.0.0.1:0"] + USER + list(args), env=env)
    s.port = s.ports()[0]
    return s


def smtp(port, src="127.0.0.1", timeout=LIMIT):
    return smtplib.SMTP("127.0.0.1", port, source_address=(src, 0), timeout=timeout)


def outcome(port, src, rcpt, sender="a@client.example"):
    """Send one message from src; what happened, as a short string."""
    try:
        c = smtp(port, src)
    except (smtplib.SMTPServerDisconnected, ConnectionError) as e:
        return "dropped"
    try:
        c.ehlo("client.example")
        c.sendmail(sender, [rcpt], "Subject: test\r\n\r\nhello\r\n")
        c.quit()
        return "queued"
    except smtplib.SMTPRecipientsRefused as e:
        return "rcpt %d" % list(e.recipients.values())[0][0]
    except smtplib.SMTPResponseException as e:
        return "refused %d" % e.smtp_code


def count(d):
    return len(os.listdir(d))


def queued():
    h = os.environ["OMAIL_HOME"]
    return count(h + "/queue/todo") + count(h + "/queue/info")


def queued_files(h=None):
    """The files holding the queued messages (docs/INTERNALS.md): todo/ID
    for a message no deliverer has taken yet, else mess/ID."""
    h = h or os.environ["OMAIL_HOME"]
    ids = set(os.listdir(h + "/queue/todo")) | set(os.listdir(h + "/queue/info"))
    out = []
    for i in sorted(ids):
        t = h + "/queue/todo/" + i
        out.append(t if os.path.exists(t) and message_len(t) is not None else h + "/queue/mess/" + i)
    return out


def message_len(path):
    """The message's length in a single-file todo/ entry (the footer:
    "OMQ2", 16 and 8 hex digits, a newline), or None for any other file."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() < 29:
            return None
        f.seek(-29, 2)
        foot = f.read()
    if not (foot.startswith(b"OMQ2") and foot.endswith(b"\n")):
        return None
    return int(foot[4:20], 16)


def queued_messages(h=None):
    """The queued messages' texts, oldest first."""
    out = []
    for p in queued_files(h):
        with open(p, "rb") as f:
            n = message_len(p)
            out.append((f.read(n) if n is not None else f.read()).decode("utf-8", "replace"))
    return out
