"""Prints a file's lines to stdout, and lines starting with 'ERR ' to stderr (without the tag)."""

import sys

with open(sys.argv[1], encoding="utf-8") as handle:
    for line in handle:
        line = line.rstrip("\n")
        if line.startswith("ERR "):
            print(line[4:], file=sys.stderr, flush=True)
        else:
            print(line, flush=True)
