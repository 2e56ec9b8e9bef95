#!/usr/bin/env python3
"""boxcount.py KIND BOX: how many times each Subject is in the mailbox
(KIND mbox or maildir), one "COUNT SUBJECT" line per subject, sorted;
messages whose last line is not "end." count as "torn". Scenarios compare
this with what they sent."""
import collections
import mailbox
import sys

kind, box = sys.argv[1], sys.argv[2]
mb = mailbox.mbox(box) if kind == "mbox" else mailbox.Maildir(box, factory=None, create=False)
seen = collections.Counter()
for m in mb:
    body = m.get_payload(decode=False)
    if not isinstance(body, str) or not body.rstrip("\n").endswith("end."):
        seen["torn: %s" % m["Subject"]] += 1
        continue
    seen[m["Subject"] or "?"] += 1
for subject, n in sorted(seen.items()):
    print(n, subject)
