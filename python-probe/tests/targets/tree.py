"""Starts a process tree that would outlive a naive stop, prints its pids, then waits forever."""

import multiprocessing as mp
import os
import subprocess
import sys
import time


def sleeper():
    time.sleep(600)


def main():
    pids = []
    child = mp.get_context("spawn").Process(target=sleeper, daemon=True)
    child.start()
    pids.append(child.pid)
    # A Python child in its own session: not in the target's process group.
    detached = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    pids.append(detached.pid)
    shell = subprocess.Popen(["bash", "-c", "sleep 600 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    pids.append(shell.pid)
    pids.append(int(shell.stdout.readline()))
    # A double-forked daemon: orphaned at once.
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\nif os.fork() == 0:\n    os.setsid(); print(os.getpid(), flush=True); time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pids.append(int(daemon.stdout.readline()))
    daemon.wait()
    print("PIDS " + " ".join(str(p) for p in [os.getpid()] + pids), flush=True)
    if len(sys.argv) > 1 and sys.argv[1] == "exit":
        return
    time.sleep(600)


if __name__ == "__main__":
    main()
