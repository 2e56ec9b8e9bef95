"""The driver of test/load-faults: SESSIONS concurrent SMTP sessions of
PER_SESSION messages each into omail-smtpd -listen, while the
omail-deliver daemon is killed at the KILL_EVERY-th passage of one crash
point after another and started again; then the mailboxes are counted.
Nothing here sleeps: the daemon's log lines ("end msg ID") say when the
work is done, and resident.LIMIT bounds every wait."""
import collections
import ctypes
import faulthandler
import mailbox
import os
import re
import signal
import smtplib
import subprocess
import threading
import time

from resident import LIMIT, USER, Server, fail, say

# Every program started here dies with this process (PR_SET_PDEATHSIG,
# SIGKILL): the hard limit's timeout leaves nothing behind.
_libc = ctypes.CDLL(None, use_errno=True)


def queued(d):
    """The entries of queue directory d, without the temporary files
    (".NAME.RANDOM") of a state write that a kill interrupted."""
    return [n for n in os.listdir(QUEUE + "/" + d) if not n.startswith(".")]


def _die_with_parent():
    _libc.prctl(1, 9)


SESSIONS = int(os.environ["SESSIONS"])
PER = int(os.environ["PER_SESSION"])
EVERY = int(os.environ["KILL_EVERY"])
MAILDIR, MBOX = os.environ["MAILDIR"], os.environ["MBOX"]
QUEUE = os.environ["OMAIL_HOME"] + "/queue"
LOGFILE = open(os.environ["DELIVER_LOG"], "a") if os.environ.get("DELIVER_LOG") else None

# The steps omail-deliver kills itself at, in turn (test/README.md, "Crash
# points"): taking a committed message apart, a Maildir delivery, an mbox
# delivery, and the outcome back in the queue manager before the state
# write.
# Each must be on every message's way: a point this mail does not pass
# (queue-trim: a message for local users only is delivered from todo/
# and never cut back) would end the kills early.
POINTS = ["local-done", "maildir-linked", "mbox-torn", "queue-message-linked", "maildir-torn",
          "mbox-done", "queue-finish", "maildir-synced", "mbox-written", "maildir-created",
          "dotlock-link-done", "mbox-synced"]


class Deliverer:
    """omail-deliver, started again each time it kills itself, until stop."""

    def __init__(self):
        self.cond = threading.Condition()
        self.kills = collections.Counter()  # by point
        self.log = []
        self.stopping = False
        self.proc = None
        self.rc = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        k = 0
        while True:
            point = POINTS[k % len(POINTS)]
            k += 1
            env = dict(os.environ, OMAIL_CRASHPOINT="%s:%d" % (point, EVERY))
            with self.cond:
                if self.stopping:
                    return
                self.proc = subprocess.Popen(["omail-deliver"], env=env, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True,
                                             preexec_fn=_die_with_parent)
            for line in self.proc.stdout:
                with self.cond:
                    self.log.append(line.rstrip("\n"))
                    if LOGFILE:
                        LOGFILE.write(line)
                    self.cond.notify_all()
            rc = self.proc.wait()
            with self.cond:
                if rc == 137 or rc == -9:
                    self.kills[point] += 1
                    continue
                self.rc = rc
                self.cond.notify_all()
                return

    def wait_empty(self):
        """Returns once the queue holds no message (todo/ and info/ are
        empty), looking again at each line the daemon logs: a message
        finishes with a line ("end msg ID"), or, when a kill comes in
        between, the next run's start-up lines follow."""
        with self.cond:
            while True:
                left = len(queued("todo")) + len(queued("info"))
                if left == 0:
                    return
                if self.rc is not None:
                    fail("omail-deliver exited %d:\n%s" % (self.rc, "\n".join(self.log[-40:])))
                if not self.cond.wait(LIMIT):
                    fail("%d messages still queued:\n%s" % (left, "\n".join(self.log[-40:])))

    def stop(self):
        with self.cond:
            self.stopping = True
            p = self.proc
        p.terminate()
        self.thread.join(LIMIT)
        if self.thread.is_alive() or self.rc not in (0, None):
            fail("omail-deliver did not stop cleanly: %r" % self.rc)


start = time.monotonic()
smtpd = Server(["omail-smtpd", "-listen", "127.0.0.1:0", "-c", str(SESSIONS + 50)] + USER)
port = smtpd.ports()[0]
deliver = Deliverer()


faulthandler.register(signal.SIGUSR1)


def _hard_limit(sig, frame):
    # The run script's timeout: stop the server too, and say where we were.
    smtpd.p.kill()
    fail("hard time limit reached; omail-deliver's last lines:\n" + "\n".join(deliver.log[-20:]))


signal.signal(signal.SIGTERM, _hard_limit)

say("%d sessions at once, %d messages each; omail-deliver killed at the %dth passage of each point in turn"
    % (SESSIONS, PER, EVERY))
accepted = {}  # subject -> its recipients, for every message given a 250
refused = []
lock = threading.Lock()
ready = threading.Barrier(SESSIONS, timeout=LIMIT)


def session(i):
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=LIMIT)
        c.ehlo("client%d.example" % i)
        ready.wait()  # every session open before any sends
        for j in range(PER):
            subj = "load-%d-%d" % (i, j)
            # The first message of a session goes to both mailboxes.
            rcpts = ["md@test.example", "mb@test.example"] if j == 0 else \
                ["md@test.example" if (i + j) % 2 else "mb@test.example"]
            body = "Subject: %s\r\n\r\nmessage %s\r\nFrom the middle\r\nend of %s\r\n" % (subj, subj, subj)
            try:
                c.sendmail("s%d@client.example" % i, rcpts, body)
            except smtplib.SMTPResponseException as e:
                with lock:
                    refused.append((subj, e.smtp_code))
                continue
            with lock:
                accepted[subj] = rcpts
        c.quit()
    except Exception as e:  # noqa: BLE001: any failure is the test's
        with lock:
            refused.append(("session %d" % i, repr(e)))


threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
for t in threads:
    t.start()
for t in threads:
    t.join(LIMIT)
    if t.is_alive():
        fail("a session hangs")
accept_done = time.monotonic()
if refused:
    fail("%d not accepted, e.g. %s:\n%s" % (len(refused), refused[:5], smtpd.log()[-3000:]))

say("%d accepted in %.1f s; waiting for omail-deliver to finish them" % (len(accepted), accept_done - start))
deliver.wait_empty()
deliver.stop()
done = time.monotonic()
if smtpd.stop() != 0:
    fail("omail-smtpd exit %d" % smtpd.p.returncode)

say("every accepted message in its mailbox exactly once")
want = collections.Counter()
for subj, rcpts in accepted.items():
    for r in rcpts:
        want[(r.split("@")[0], subj)] += 1
got = collections.Counter()
# A torn copy (a kill at mbox-torn: From_ and header lines, no body, or
# any instant of another delivery's append) must not stay: the next
# writer of the mbox, whichever message it delivers, finds the dead
# writer's dotlock and cuts the mbox back to where that append began
# (lib/mbox dotlock.go). Counted, and a failure.
whole_tokens, torn_tokens = set(), []
for box, mb in (("md", mailbox.Maildir(MAILDIR, create=False)), ("mb", mailbox.mbox(MBOX, create=False))):
    for m in mb:
        subj = m["Subject"]
        token = (box, m["X-Omail-Delivery"])
        if subj and m.get_payload().endswith("end of %s\n" % subj):
            got[(box, subj)] += 1
            whole_tokens.add(token)
        else:
            torn_tokens.append(token)
torn = len(torn_tokens)
# The cuts lib/mbox made, each logged.
cuts = sum(1 for line in deliver.log if "which died holding the lock" in line)
lost = sum((want - got).values())
dups = sum((got - want).values())
deliveries = sum(want.values())
kills = sum(deliver.kills.values())
leftover = {d: queued(d) for d in ("todo", "info", "corrupt")}
# A state write a kill interrupted leaves its temporary file in info/
# (".ID.RANDOM"): a crash leftover, removed by the cleanup once old.
temporaries = len(os.listdir(QUEUE + "/info")) - len(queued("info"))
# A kill between the removal of a finished message's info/ID and of its
# mess/ID (the daemon delivers several messages at once, and a crash
# point reached by one kills it in the middle of another's steps) leaves
# mess/ID alone: a crash leftover, removed once it is OrphanAge old.
orphans = len(os.listdir(QUEUE + "/mess"))
print("figures: %d sessions, %d messages accepted (%d deliveries: %d Maildir, %d mbox), "
      "omail-deliver killed %d times (%s), lost %d, duplicated %d, %d torn mbox copies left (%d cut by the next writer), %d mess/ files left for the cleanup, "
      "%d state-write temporary files in info/; "
      "accepting took %.1f s, all delivered after %.1f s"
      % (SESSIONS, len(accepted), deliveries, sum(v for (b, _), v in want.items() if b == "md"),
         sum(v for (b, _), v in want.items() if b == "mb"), kills,
         ", ".join("%s %d" % kv for kv in sorted(deliver.kills.items())), lost, dups, torn, cuts, orphans, temporaries,
         accept_done - start, done - start), flush=True)
if lost or dups:
    fail("lost %s, duplicated %s" % (sorted((want - got))[:5], sorted((got - want))[:5]))
if torn:
    fail("%d torn mbox copies left: %s" % (torn, torn_tokens[:5]))
if any(leftover.values()):
    fail("left in the queue: %s" % leftover)
# The test shows nothing unless the daemon was killed often, at every
# point of the list.
if kills < len(POINTS) or len(deliver.kills) < len(POINTS):
    fail("omail-deliver killed only %d times (%s)" % (kills, dict(deliver.kills)))
