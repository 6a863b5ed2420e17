def compute(n):
    return bytearray(n)
