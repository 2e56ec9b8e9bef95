# Reads `postqueue -j` on stdin and prints "QUEUEID RCPT,RCPT..." per
# message, the recipients sorted.
import json, sys

for line in sys.stdin:
    m = json.loads(line)
    print(m['queue_id'], ','.join(sorted(r['address'] for r in m['recipients'])))
