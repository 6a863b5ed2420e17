# Binds compute before the probed module (aliaspkg.api) is imported.
from aliaspkg.impl import compute


def use(n):
    return len(compute(n))
