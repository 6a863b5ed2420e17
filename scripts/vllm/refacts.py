"""Re-reads a recorded run's log lines with the probe's current vLLM log parsers and adds the
facts a newer probe would have sent (e.g. vLLM 0.26's `memory_usage` line, parsed since).

    python3 refacts.py RUN_DIR [--probe python-probe]

Facts are what the launcher parses from the target's own log lines while it runs; the lines are
in the run as `log` events, so the same parser gives the same facts afterwards. Each added fact
follows its log line, carries `derived: "refacts"`, and is added only where the run has no fact
of that kind from that line. events.jsonl.gz stays compressed. Prints what it added.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--probe", default=os.path.join(os.path.dirname(__file__), "..", "..", "python-probe"))
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.probe))
    from memlens_probe.facts import FactParser

    plain = os.path.join(args.run_dir, "events.jsonl")
    path = plain if os.path.exists(plain) else plain + ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    have = set()
    for line in lines:
        event = json.loads(line)
        if event.get("type") == "fact":
            have.add((event.get("kind"), event.get("line")))
    parsers: dict = {}
    out, added = [], 0
    for line in lines:
        out.append(line)
        event = json.loads(line)
        if event.get("type") != "log":
            continue
        parser_of_stream = parsers.setdefault((event.get("pid"), event.get("stream")), FactParser())
        for kind, values, text in parser_of_stream.feed(event.get("line", "")):
            if (kind, text) in have:
                continue
            fact = {
                "v": event["v"],
                "type": "fact",
                "ts": event["ts"],
                "pid": event["pid"],
                "rank": event.get("rank"),
                "device": event.get("device"),
                "kind": kind,
                "values": values,
                "line": text,
                "derived": "refacts",
            }
            out.append(json.dumps(fact, separators=(",", ":")))
            have.add((kind, text))
            added += 1
            print(f"added {kind}: {values}")
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"{path}: {added} fact(s) added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
