#!/usr/bin/env python3
"""count.py MBOX FIRST LAST [bounce]: the mbox holds "crash FIRST".."crash
LAST" exactly once each, and nothing else (with "bounce": one bounce
carrying each of them). Prints
what is wrong and exits 1 otherwise."""
import collections
import mailbox
import re
import sys

box, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bounce = len(sys.argv) > 4
seen = collections.Counter()
bad = []
for m in mailbox.mbox(box):
    if bounce:
        if m["Subject"] != "failure notice":
            bad.append("not a bounce: %r" % m["Subject"])
            continue
        found = re.findall(r"Subject: (crash \d+)", m.as_string())
        if len(found) != 1:
            bad.append("a bounce carrying %r" % found)
            continue
        seen[found[0]] += 1
    else:
        subject = m["Subject"] or "?"
        seen[subject] += 1
        if "end of " + subject not in m.get_payload():
            bad.append("torn: %s" % subject)
want = collections.Counter({"crash %d" % i: 1 for i in range(first, last + 1)})
for s in sorted(set(seen) | set(want)):
    if seen[s] != want[s]:
        bad.append("%s: %d copies, want %d" % (s, seen[s], want[s]))
if bad:
    print("\n".join(bad))
    sys.exit(1)
