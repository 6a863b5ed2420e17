"""Line-probe workload; tests find lines by their markers."""

import sys

MIB = 1 << 20
held = []


def work(n):
    a = bytearray(n)  # MARK:alloc
    for offset in range(0, n, 4096):
        a[offset] = 1
    held.append(a)  # MARK:append
    total = 0
    for i in range(3):
        total += i  # MARK:loop
    return total


OOM_TEXT = (
    "CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total capacity of 15.57 GiB of which 1.44 MiB is free."
)


def explode():
    x = 1
    raise RuntimeError(OOM_TEXT)  # MARK:raise


def make_big(n):
    data = bytearray(n)
    for offset in range(0, n, 4096):
        data[offset] = 7
    return data


def main():
    work(64 * MIB)
    blob = make_big(48 * MIB)  # MARK:call
    try:
        explode()
    except RuntimeError:
        pass
    # MARK:comment
    return len(blob)


if __name__ == "__main__":
    main()
    print("lines done", file=sys.stderr)
