"""Targets that once behaved differently probed and unprobed (imported as a module)."""

import functools
import sys


@functools.lru_cache(maxsize=None)
def cached(n):
    return n * 2


def deep(n):
    return 0 if n == 0 else 1 + deep(n - 1)


def plain(n):
    return n + 1


def deepest():
    """How deep recursion gets before RecursionError, counted by the target itself."""
    reached = [0]

    def down(n):
        reached[0] = n
        return down(n + 1)

    try:
        down(0)
    except RecursionError:
        pass
    return reached[0]


def endless(n):
    return endless(n + 1)


def main(scenario):
    if scenario == "lru":
        print(cached(3), cached(3), cached.cache_info().hits)
        cached.cache_clear()
        print(cached.cache_info().currsize, cached.cache_parameters())
        print(cached.__wrapped__.__name__, callable(cached.cache_clear))
    elif scenario == "recursion":
        print(sys.getrecursionlimit(), deep(700), sys.getrecursionlimit())
    elif scenario == "endless":
        try:
            endless(0)
        except RecursionError:
            print("caught")
        print(deep(3), sys.getrecursionlimit())
    elif scenario == "plain":
        wrappers = 0
        fn = plain
        while hasattr(fn, "__wrapped__"):
            wrappers, fn = wrappers + 1, fn.__wrapped__
        print(plain(1), wrappers)
