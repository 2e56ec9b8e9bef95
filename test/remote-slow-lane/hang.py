#!/usr/bin/env python3
"""A dead SMTP destination: accepts connections on loopback and never
says a word. Prints "LABEL port N", then "LABEL accepted" per connection,
flushed, so a test can count the connections held open without timing."""
import socket
import sys

label = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
print(label, "port", s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    print(label, "accepted", flush=True)
