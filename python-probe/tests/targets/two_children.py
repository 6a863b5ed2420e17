"""A parent and two children (one multiprocessing spawn, one fork), each calling the probed function."""

import multiprocessing as mp

import memwork


def job():
    memwork.transient(1 << 20)


if __name__ == "__main__":
    job()
    for method in ("spawn", "fork"):
        child = mp.get_context(method).Process(target=job)
        child.start()
        child.join()
