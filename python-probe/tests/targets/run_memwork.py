"""Runs a memwork scenario with memwork imported as a module (function targets need a module)."""

import sys

import memwork

memwork.main(sys.argv[1] if len(sys.argv) > 1 else "all")
