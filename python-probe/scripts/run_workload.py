"""Runs one workload with its module imported (function targets need an imported module):
``python3 run_workload.py SCENARIO TRUTH.json [ARGS...]``; ``calls`` is the benchmark loop."""

import sys

if __name__ == "__main__":
    if sys.argv[1] == "calls":
        import bench_targets

        sys.exit(bench_targets.main(sys.argv[2:]))
    import gpu_workloads

    sys.exit(gpu_workloads.main(sys.argv[1:]))
