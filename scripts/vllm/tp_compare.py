"""Per-rank figures of a tensor-parallel MemLens run beside the single-GPU run of the same load.

    python3 tp_compare.py SINGLE_RUN_DIR TP_RUN_DIR [--json OUT]

For every probed function: calls and allocated delta per rank (each rank's worker process), and
the sum over ranks against the single-GPU figure. vLLM shards gpt-oss-20b's embedding, lm_head,
attention projections, sinks and the experts over the ranks and keeps full copies of the norms,
the router and the row-parallel biases (o_proj.bias, the experts' down_proj bias) on each rank;
the replicated bytes of the checkpoint are printed from the model's tensor inventory, so the
sum over ranks can be read against "single + (ranks - 1) x replicated". Kernel-format padding
and per-rank workspaces come on top and are shown as what is left.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

from check_truth import load_events, target_specs

HERE = os.path.dirname(os.path.abspath(__file__))
INVENTORY = os.path.join(HERE, "..", "..", "test", "fixtures", "gpt-oss-20b", "tensors.json")
DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "I8": 1}
# Tensors vLLM keeps whole on every rank (gpt_oss.py: RMSNorm, the router's ReplicatedLinear,
# RowParallelLinear's bias, FusedMoE's w2 bias).
REPLICATED = re.compile(r"(layernorm|model\.norm|mlp\.router\.|o_proj\.bias|down_proj_bias)")
GIB = float(1 << 30)


def per_rank(run_dir: str) -> Tuple[Dict[str, str], Dict[Tuple[str, Optional[int]], List[int]], Dict[int, Any]]:
    """spec by target id; (spec, rank) -> [calls, summed allocated delta, highest peak over start]; pid -> rank."""
    events = load_events(run_dir)
    specs = target_specs(events)
    table: Dict[Tuple[str, Optional[int]], List[int]] = {}
    ranks: Dict[int, Any] = {}
    for e in events:
        if e.get("type") != "exit" or "allocated" not in e.get("before", {}):
            continue
        rank = e.get("rank")
        ranks[e["pid"]] = rank
        row = table.setdefault((specs.get(e["target"], e["target"]), rank), [0, 0, 0])
        row[0] += 1
        row[1] += e["after"]["allocated"] - e["before"]["allocated"]
        peak = e.get("peak", {}).get("allocated")
        if peak is not None:
            row[2] = max(row[2], peak - e["before"]["allocated"])
    return specs, table, ranks


def replicated_bytes() -> int:
    with open(INVENTORY, encoding="utf-8") as f:
        tensors = json.load(f)["tensors"]
    total = 0
    for name, t in tensors.items():
        if REPLICATED.search(name):
            n = DTYPE_BYTES[t["dtype"]]
            for d in t["shape"]:
                n *= d
            total += n
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("single_run")
    parser.add_argument("tp_run")
    parser.add_argument("--json")
    args = parser.parse_args()
    _s, single, _r = per_rank(args.single_run)
    _t, tp, ranks = per_rank(args.tp_run)
    tp_ranks = sorted({r for (_spec, r) in tp if r is not None})
    replicated = replicated_bytes()
    rows = []
    for spec in sorted({spec for (spec, _r) in tp} | {spec for (spec, _r) in single}):
        one = [v for (s, _r), v in single.items() if s == spec]
        single_calls = sum(v[0] for v in one)
        single_delta = sum(v[1] for v in one)
        by_rank = {r: tp.get((spec, r), [0, 0, 0]) for r in tp_ranks}
        if not any(v[0] for v in by_rank.values()) and not single_calls:
            continue
        rows.append(
            {
                "function": spec,
                "single": {"calls": single_calls, "delta": single_delta},
                "ranks": {str(r): {"calls": v[0], "delta": v[1], "peak_over_start": v[2]} for r, v in by_rank.items()},
                "sum_delta": sum(v[1] for v in by_rank.values()),
            }
        )
    print(f"ranks {tp_ranks} in processes {sorted(ranks)}; replicated checkpoint bytes per rank {replicated:,}")
    print(
        f"{'function':70} {'single calls/GiB':>18} "
        + " ".join(f"{'rank ' + str(r) + ' calls/GiB':>18}" for r in tp_ranks)
    )
    for row in rows:
        cells = [f"{row['ranks'][str(r)]['calls']:>6} {row['ranks'][str(r)]['delta'] / GIB:>+10.3f}" for r in tp_ranks]
        print(
            f"{row['function'][-70:]:70} {row['single']['calls']:>6} {row['single']['delta'] / GIB:>+10.3f}  "
            + "  ".join(cells)
        )
    load = next((r for r in rows if r["function"].endswith(":GPUModelRunner.load_model")), None)
    summary: Dict[str, Any] = {"ranks": tp_ranks, "replicated_bytes_per_rank": replicated, "rows": rows}
    if load:
        extra = load["sum_delta"] - load["single"]["delta"]
        expected = (len(tp_ranks) - 1) * replicated
        summary["load_model"] = {
            "single": load["single"]["delta"],
            "sum_over_ranks": load["sum_delta"],
            "sum_minus_single": extra,
            "replicated_copies": expected,
            "left_after_replicated": extra - expected,
        }
        print(
            f"GPUModelRunner.load_model: single {load['single']['delta'] / GIB:.3f} GiB, sum over ranks "
            f"{load['sum_delta'] / GIB:.3f} GiB; sum - single {extra / GIB:+.4f} GiB, of which replicated copies "
            f"{expected / GIB:.4f} GiB, left (padding, per-rank buffers) {(extra - expected) / GIB:+.4f} GiB"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
