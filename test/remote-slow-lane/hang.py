#!/usr/bin/env python3
"""A dead SMTP destination: accepts connections on loopback and never
says a word. Prints "LABEL port N", then "LABEL accepted" per connection,
in one write each, so a test can count the connections held open without timing."""
import os
import socket
import sys


def say(line):
    # One write(2) per line: both servers write to one fifo, and print()
    # may write its pieces separately (PYTHONUNBUFFERED), interleaving
    # them with the other server's.
    os.write(1, (line + "\n").encode())


label = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
say("%s port %d" % (label, s.getsockname()[1]))
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    say(label + " accepted")
