#!/usr/bin/env python3
"""count.py KIND BOX N: the mailbox (mbox or maildir) holds messages
"crash 1".."crash N" exactly once each, every one whole (its last line
is there). Prints what is wrong and exits 1 otherwise."""
import collections
import mailbox
import sys

kind, box, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mb = mailbox.mbox(box) if kind == "mbox" else mailbox.Maildir(box, factory=None, create=False)
seen = collections.Counter()
bad = []
for m in mb:
    subject = m["Subject"] or "?"
    seen[subject] += 1
    body = m.get_payload()
    if isinstance(body, str) and "end of " + subject not in body:
        bad.append("torn: %s: %r" % (subject, body[-80:]))
want = collections.Counter({"crash %d" % i: 1 for i in range(1, n + 1)})
for s in sorted(set(seen) | set(want)):
    if seen[s] != want[s]:
        bad.append("%s: %d copies, want %d" % (s, seen[s], want[s]))
if bad:
    print("\n".join(bad))
    sys.exit(1)
