#!/usr/bin/env python3
"""endframe.py check BUNDLE PUBKEY-LINE: checks a version 3 bundle's end
frame by docs/BUNDLES.md alone (Ed25519 by openssl): the last 76 bytes
are 52 2A 4D 18, length 68, the key id of the public key PUBKEY-LINE
names (as omail-pack -keygen prints it, ed25519:BASE64): the first 4
bytes of its SHA-256, and a signature over "OMAIL-BUNDLE-SIGNATURE 3" LF
and the SHA-256 of the bytes before.
endframe.py future STREAM.zst OUT OCMPKEY: makes a version 3 bundle from
a zstd stream, signed with OCMPKEY (a control/ocmpkey file), as a newer
omail would pack it."""
import base64, hashlib, os, struct, subprocess, sys, tempfile

MAGIC = 0x184D2A52


def ossl(*args):
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


def check(path, publine):
    data = open(path, "rb").read()
    assert publine.startswith("ed25519:"), publine
    pub = base64.b64decode(publine[len("ed25519:"):])
    body, frame = data[:-76], data[-76:]
    magic, length = struct.unpack("<II", frame[:8])
    assert magic == MAGIC and length == 68, "not a signed version 3 end frame: %s" % frame[:8].hex()
    assert frame[8:12] == hashlib.sha256(pub).digest()[:4], "the frame names another key id: %s" % frame[8:12].hex()
    with tempfile.TemporaryDirectory() as d:
        key, msg, sig = (os.path.join(d, n) for n in ("pub.der", "msg", "sig"))
        # SubjectPublicKeyInfo DER of an Ed25519 key (RFC 8410).
        open(key, "wb").write(bytes.fromhex("302a300506032b6570032100") + pub)
        open(msg, "wb").write(b"OMAIL-BUNDLE-SIGNATURE 3\n" + hashlib.sha256(body).digest())
        open(sig, "wb").write(frame[12:])
        ossl("pkeyutl", "-verify", "-pubin", "-inkey", key, "-keyform", "DER", "-rawin", "-in", msg, "-sigfile", sig)
    print("end frame verified")


def future(stream_path, out_path, keyfile):
    stream = open(stream_path, "rb").read()
    line = open(keyfile).read().strip()
    assert line.startswith("ed25519-seed:"), "not an ocmpkey file"
    seed = base64.b64decode(line[len("ed25519-seed:"):])
    with tempfile.TemporaryDirectory() as d:
        key, msg = os.path.join(d, "key.der"), os.path.join(d, "msg")
        # PKCS#8 DER of an Ed25519 private key (RFC 8410).
        open(key, "wb").write(bytes.fromhex("302e020100300506032b657004220420") + seed)
        open(msg, "wb").write(b"OMAIL-BUNDLE-SIGNATURE 3\n" + hashlib.sha256(stream).digest())
        sig = ossl("pkeyutl", "-sign", "-inkey", key, "-keyform", "DER", "-rawin", "-in", msg)
        pub = ossl("pkey", "-in", key, "-inform", "DER", "-pubout", "-outform", "DER")[-32:]
    assert len(sig) == 64 and len(pub) == 32
    open(out_path, "wb").write(stream + struct.pack("<II", MAGIC, 68) + hashlib.sha256(pub).digest()[:4] + sig)


if sys.argv[1] == "check":
    check(sys.argv[2], sys.argv[3])
else:
    future(sys.argv[2], sys.argv[3], sys.argv[4])
