"""Workloads of known size for the probe tests (host memory: bytearrays, touched page by page)."""

import sys

MIB = 1 << 20
PAGE = 4096


def touched(n):
    block = bytearray(n)
    for offset in range(0, n, PAGE):
        block[offset] = 1
    return block


kept = []


def retain(n):
    kept.append(touched(n))
    return len(kept[-1])


def transient(n):
    block = touched(n)
    return len(block)


def outer(n):
    retain(n)
    transient(2 * n)
    return inner_twice(n)


def inner_twice(n):
    return transient(n) + transient(n)


class Holder:
    def method(self, n):
        return retain(n)

    @staticmethod
    def static(n):
        return transient(n)

    @classmethod
    def klass(cls, n):
        return transient(n)

    class Nested:
        def deep(self, n):
            return transient(n)


def fails():
    raise ValueError("planned failure")


async def coroutine(n):
    return transient(n)


def main(scenario):
    if scenario == "retain200":
        retain(200 * MIB)
    elif scenario == "all":
        outer(8 * MIB)
        holder = Holder()
        holder.method(4 * MIB)
        Holder.static(4 * MIB)
        holder.static(1 * MIB)
        Holder.klass(4 * MIB)
        Holder.Nested().deep(4 * MIB)
        try:
            fails()
        except ValueError:
            pass
        import asyncio

        asyncio.run(coroutine(2 * MIB))
    print("memwork done")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")


class Base:
    @classmethod
    def build(cls, n):
        return cls.__name__, transient(n)


class Derived(Base):
    pass
