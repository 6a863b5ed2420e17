"""A parent that starts a spawn child and a fork child; each calls the probed function."""

import multiprocessing as mp
import os
import subprocess
import sys

import memwork


def child_job(n):
    memwork.transient(n)
    memwork.retain(n)


def main():
    memwork.transient(1 << 20)
    for method in ("spawn", "fork"):
        ctx = mp.get_context(method)
        # Named as vLLM names its engine process, so the probe's process_name can be checked.
        proc = ctx.Process(target=child_job, args=(8 << 20,), name=f"EngineCore_{method}")
        proc.start()
        proc.join()
        assert proc.exitcode == 0, (method, proc.exitcode)
    subprocess.run([sys.executable, "-c", "import memwork; memwork.transient(1 << 20)"], check=True)
    subprocess.run(["bash", "-c", f"{sys.executable} -c 'import memwork; memwork.transient(1 << 20)'"], check=True)
    print("children done", os.getpid())


if __name__ == "__main__":
    main()
