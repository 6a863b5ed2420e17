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


def no_kv_memory():
    # vLLM's refusal when nothing is left for the KV cache (vllm/v1/core/kv_cache_utils.py).
    raise ValueError(
        "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing "
        "the engine."
    )


def sampler_warmup():
    # vLLM 0.26's _dummy_sampler_run re-raises torch's error as its own, "from" the original (seen on
    # an H200 emulating a 15.5 GiB card): the failed request is only in the cause's message.
    try:
        allocate()
    except RuntimeError as e:
        raise RuntimeError(
            "CUDA out of memory occurred when warming up sampler with 256 dummy requests. Please try lowering "
            "`max_num_seqs` or `gpu_memory_utilization` when initializing the engine."
        ) from e


def torch_oom():
    """torch's own error class, raised as torch raises it (CUDA need not exist to raise it)."""
    import torch

    raise torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.57 GiB of which "
        "1.44 GiB is free."
    )


if __name__ == "__main__":
    load_model()
