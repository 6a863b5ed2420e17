"""Command line: ``python -m memlens_probe run --plan PLAN.json [--out RUN_DIR] -- COMMAND ...``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from . import __version__
from .plan import PlanError, load_plan
from .protocol import PROTOCOL_VERSION

USAGE = """memlens_probe COMMAND

  run --plan PLAN.json [--out RUN_DIR] [--run-id ID] [--grace SECONDS] [--control stdin|none] -- TARGET [ARGS...]
        run TARGET with the probe in every Python process; events on stdout (JSON lines);
        --control stdin: read control messages from stdin, and stop the run at EOF there
  check-plan PLAN.json      validate a plan (exit 2 naming the field that is wrong)
  preflight --json          Python, torch, GPUs, free memory and GPU processes here (JSON)
  selftest [--json]         which readings are available here
  version [--json]          probe and protocol version
  snapshot sites|timeline SNAPSHOT.pickle [--file F] [--root DIR]... [--device N]
                            an allocator snapshot's allocation sites or timeline (JSON); never runs
                            code from the pickle
  snapshot export SNAPSHOT.pickle OUT.pickle
                            rewrite it with pickle protocol 4, which pytorch.org/memory_viz opens
  build-fast-stats [--out DIR] [--cxx COMPILER]
                            build the optional fast counter reader for this Python's torch (g++,
                            torch's headers), and the fast path; probed processes of that
                            torch use them (PROTOCOL.md)
  build-fast-path [--out DIR] [--cc COMPILER]
                            build the optional fast path alone (a C compiler, this Python's
                            headers); probed processes of this Python use it (PROTOCOL.md)
"""


def _snapshot(argv: List[str]) -> int:
    from . import snapshot

    parser = argparse.ArgumentParser(prog="memlens_probe snapshot")
    parser.add_argument("action", choices=("sites", "timeline", "export"))
    parser.add_argument("path")
    parser.add_argument("out", nargs="?")
    parser.add_argument("--file", default="", help="the scope's own source file (sites keyed by its lines)")
    parser.add_argument("--root", action="append", default=[], help="a source root (second site key)")
    parser.add_argument("--device", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        data = snapshot.load(args.path)
    except (OSError, snapshot.SnapshotError) as exc:
        sys.stderr.write(f"memlens_probe snapshot: {args.path}: {exc}\n")
        return 2
    if args.action == "export":
        if not args.out:
            sys.stderr.write("memlens_probe snapshot export: give the output file, e.g. snapshot-viz.pickle\n")
            return 2
        snapshot.export_for_memory_viz(data, args.out)
        return 0
    result = (
        snapshot.sites(data, args.file, args.root, args.device)
        if args.action == "sites"
        else snapshot.timeline(data, args.device)
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _run(argv: List[str]) -> int:
    if "--" in argv:
        split = argv.index("--")
        options, command = argv[:split], argv[split + 1 :]
    else:
        options, command = argv, []
    parser = argparse.ArgumentParser(prog="memlens_probe run", description="Run a command with the MemLens probe.")
    parser.add_argument("--plan", required=True, help="plan JSON file (see PROTOCOL.md)")
    parser.add_argument("--out", help="run folder for events.jsonl and plan.json")
    parser.add_argument("--run-id", help="run id for the start event (default: time + random)")
    parser.add_argument("--grace", type=float, default=3.0, help="seconds between SIGTERM and SIGKILL on stop")
    parser.add_argument(
        "--control",
        choices=("none", "stdin"),
        default="none",
        help="where control messages come from: 'stdin' (EOF there stops the run, for a controller such as "
        "the extension) or 'none' (the default: stdin is left alone, so batch jobs, nohup and ssh work)",
    )
    # Kept so that command lines written for older probes still parse; it is the default now.
    parser.add_argument("--no-stdin-control", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(options)
    if not command:
        sys.stderr.write("memlens_probe run: no command given; put it after '--', e.g. -- python3 train.py\n")
        return 2
    try:
        plan = load_plan(args.plan)
    except PlanError as exc:
        sys.stderr.write(f"memlens_probe: plan {args.plan} is not usable: {exc}\n")
        return 2
    from .launcher import Launcher

    launcher = Launcher(
        plan,
        command,
        out_dir=args.out,
        stdin_control=args.control == "stdin" and not args.no_stdin_control,
        run_id=args.run_id,
        grace_s=args.grace,
    )
    return launcher.run()


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    as_json = "--json" in rest
    if command == "run":
        return _run(rest)
    if command == "snapshot":
        return _snapshot(rest)
    if command == "build-fast-stats":
        from .fast_stats_build import main as build_fast_stats

        return build_fast_stats(rest)
    if command == "build-fast-path":
        from .fast_path import main as build_fast_path

        return build_fast_path(rest)
    if command == "version":
        if as_json:
            print(json.dumps({"probe_version": __version__, "protocol": PROTOCOL_VERSION}))
        else:
            print(f"memlens_probe {__version__} (protocol v{PROTOCOL_VERSION})")
        return 0
    if command == "check-plan":
        paths = [a for a in rest if not a.startswith("-")]
        if len(paths) != 1:
            sys.stderr.write("memlens_probe check-plan: give one plan file\n")
            return 2
        try:
            plan = load_plan(paths[0])
        except PlanError as exc:
            sys.stderr.write(f"memlens_probe: plan {paths[0]} is not usable: {exc}\n")
            return 2
        print(f"plan ok: {len(plan.targets)} targets, pause {plan.pause or 'none'}")
        return 0
    if command == "preflight":
        from .preflight import preflight

        print(json.dumps(preflight(), indent=None if as_json else 2))
        return 0
    if command == "selftest":
        from .preflight import selftest

        report = selftest()
        if as_json:
            print(json.dumps(report))
        else:
            for key, value in report.items():
                print(f"{key:18} {value}")
        return 0
    sys.stderr.write(f"memlens_probe: unknown command {command!r}\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
