"""Verifies every DKIM-Signature of a message with dkimpy (Debian's
python3-dkim), an implementation independent of omail's. The public
keys come from zone lines as omail-deliver -dkimkeygen prints them
(NAME. IN TXT ( "..." "..." )), handed to dkimpy through its dnsfunc
argument: no DNS query is ever made.
Usage: /usr/bin/python3 verify.py MSGFILE ZONEFILE...
Prints one line per signature (ok or FAIL, d=, s=, a=). Exits 0 when
there is at least one signature and every one verifies, 3 when one
fails, 4 when there is none (anything else, e.g. 1 for a Python error,
is the verifier's trouble, not the message's)."""
import re, sys
import dkim

records = {}
for zf in sys.argv[2:]:
    for line in open(zf):
        m = re.match(r'^(\S+)\.\s+IN\s+TXT\s+\((.*)\)\s*$', line)
        if m:
            records[m.group(1).lower()] = "".join(re.findall(r'"([^"]*)"', m.group(2))).encode()

def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return records.get(name.rstrip(".").lower())

msg = open(sys.argv[1], "rb").read()
d = dkim.DKIM(msg)
sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
if not sigs:
    print("no DKIM-Signature")
    sys.exit(4)
ok = True
for i, sig in enumerate(sigs):
    tags = dict((k.strip(), v.strip()) for k, _, v in (t.partition(b"=") for t in re.sub(rb"\s+", b"", sig).split(b";")) if k.strip())
    why = ""
    try:
        good = dkim.DKIM(msg, minkey=1024).verify(idx=i, dnsfunc=dnsfunc)
    except dkim.ValidationError as e:  # dkimpy raises some failures (body hash)
        good, why = False, " (%s)" % e
    ok = ok and good
    print("%s d=%s s=%s a=%s%s" % ("ok" if good else "FAIL", tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode(), why))
sys.exit(0 if ok else 3)
