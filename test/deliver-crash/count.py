#!/usr/bin/env python3
"""count.py KIND BOX N [FIRST [bounce]]: the mailbox (mbox or maildir)
holds messages "crash FIRST".."crash N" (FIRST defaults to 1) exactly
once each and nothing else, every one whole (its last line is there).
With "bounce": it holds one bounce ("failure notice") carrying each of
them instead. Prints what is wrong and exits 1 otherwise."""
import collections
import mailbox
import re
import sys

kind, box, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
bounce = len(sys.argv) > 5 and sys.argv[5] == "bounce"
mb = mailbox.mbox(box) if kind == "mbox" else mailbox.Maildir(box, factory=None, create=False)
seen = collections.Counter()
bad = []
for m in mb:
    if bounce:
        if m["Subject"] != "failure notice":
            bad.append("not a bounce: %r" % m["Subject"])
            continue
        carried = re.findall(r"Subject: (crash \d+)", m.as_string())
        if len(carried) != 1:
            bad.append("a bounce carrying %r" % carried)
            continue
        seen[carried[0]] += 1
        continue
    subject = m["Subject"] or "?"
    seen[subject] += 1
    body = m.get_payload()
    if isinstance(body, str) and "end of " + subject not in body:
        bad.append("torn: %s: %r" % (subject, body[-80:]))
want = collections.Counter({"crash %d" % i: 1 for i in range(first, n + 1)})
for s in sorted(set(seen) | set(want)):
    if seen[s] != want[s]:
        bad.append("%s: %d copies, want %d" % (s, seen[s], want[s]))
if bad:
    print("\n".join(bad))
    sys.exit(1)
