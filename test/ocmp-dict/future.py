#!/usr/bin/env python3
"""future.py STREAM.zst OUT [OCMPKEY]: makes a bundle file as a newer omail
would, from a zstd stream compressed with a dictionary omail does not
have, by docs/BUNDLES.md alone: the signature frame (when OCMPKEY, a
control/ocmpkey file, is given; Ed25519 by openssl), then the seal."""
import base64, hashlib, os, struct, subprocess, sys, tempfile

stream = open(sys.argv[1], "rb").read()
out = stream
if len(sys.argv) > 3:
    line = open(sys.argv[3]).read().strip()
    assert line.startswith("ed25519-seed:"), "not an ocmpkey file"
    seed = base64.b64decode(line[len("ed25519-seed:"):])
    # PKCS#8 DER of an Ed25519 private key (RFC 8410): a fixed prefix and the seed.
    der = bytes.fromhex("302e020100300506032b657004220420") + seed
    with tempfile.TemporaryDirectory() as d:
        key, msg = os.path.join(d, "key.der"), os.path.join(d, "msg")
        open(key, "wb").write(der)
        open(msg, "wb").write(b"OMAIL-BUNDLE-SIGNATURE 1\n" + hashlib.sha256(stream).digest())
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-keyform", "DER", "-rawin", "-in", msg],
                             check=True, capture_output=True).stdout
        pub = subprocess.run(["openssl", "pkey", "-in", key, "-inform", "DER", "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout[-32:]
    assert len(sig) == 64 and len(pub) == 32
    out += struct.pack("<II", 0x184D2A51, 104) + b"OMAILSG1" + pub + sig
out += struct.pack("<II", 0x184D2A50, 40) + b"OMAILSL1" + hashlib.sha256(out).digest()
open(sys.argv[2], "wb").write(out)
