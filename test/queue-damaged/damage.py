#!/usr/bin/env python3
"""damage.py HOW FILE: damages a queue file in place, one way of each kind
the queue must set aside (docs/RELIABILITY.md, "Damaged queue files").

todo/ID is MESSAGE STATE FOOTER, the footer "OMQ2" and the two lengths in
16 and 8 hex digits and a newline; a state is NUL-ended records, "V1"
first and "." last. The state-* kinds damage a todo/ file's STATE and
write a footer that agrees, so that only the state is wrong."""
import sys

how, path = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    b = f.read()


def split_todo(b):
    foot = b[-29:]
    assert foot[:4] == b"OMQ2" and foot[-1:] == b"\n", foot
    m, s = int(foot[4:20], 16), int(foot[20:28], 16)
    return b[:m], b[m:m + s]


def join_todo(msg, st):
    return msg + st + b"OMQ2%016x%08x\n" % (len(msg), len(st))


if how == "half":
    b = b[: len(b) // 2]
elif how == "empty":
    b = b""
elif how == "garbage":  # same size, ends like a footer
    b = (b"\x9f\x00garbage\xff" * (len(b) // 10 + 1))[: len(b) - 1] + b"\n"
elif how == "footer-version":
    b = b[:-29] + b"OMQ3" + b[-25:]
elif how == "footer-cut":  # the end mark of the file (the footer's newline) gone
    b = b[:-1]
elif how == "state-version":
    msg, st = split_todo(b)
    b = join_todo(msg, st.replace(b"V1\0", b"V2\0", 1))
elif how == "state-endmark":
    msg, st = split_todo(b)
    assert st.endswith(b"\0.\0")
    b = join_todo(msg, st[:-2])
elif how == "info-version":
    assert b.startswith(b"V1\0")
    b = b"V2" + b[2:]
elif how == "info-endmark":
    assert b.endswith(b"\0.\0")
    b = b[:-2]
else:
    sys.exit("damage.py: unknown kind " + how)
with open(path, "wb") as f:
    f.write(b)
