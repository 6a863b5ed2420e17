"""Raises a CUDA-out-of-memory RuntimeError (torch's message) through nested probed functions."""


def allocate():
    raise RuntimeError(
        "CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total capacity of 15.57 GiB of which "
        "1.44 MiB is free. Including non-PyTorch memory, this process has 15.56 GiB memory in use."
    )


def load_layer():
    return allocate()


def load_model():
    try:
        load_layer()
    except RuntimeError:
        raise


if __name__ == "__main__":
    load_model()
