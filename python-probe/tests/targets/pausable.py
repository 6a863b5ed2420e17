"""Calls step() in a loop; other processes keep ticking while this one is paused."""

import multiprocessing as mp
import sys
import time


def step(i):
    return i * 2


def helper(i):
    return i + 1


def other_process(n):
    for i in range(n):
        print(f"tick {i}", flush=True)
        time.sleep(0.02)


def main():
    ticker = None
    if "ticker" in sys.argv:
        ticker = mp.get_context("spawn").Process(target=other_process, args=(20,))
        ticker.start()
    rounds = 3
    if "loop" in sys.argv:
        rounds = 1000  # about 10 s: long enough to be paused or stopped on request
    for i in range(rounds):
        step(i)
        helper(i)
        if rounds > 3:
            time.sleep(0.01)
    if ticker is not None:
        ticker.join()
    print("pausable done", flush=True)


if __name__ == "__main__":
    main()
