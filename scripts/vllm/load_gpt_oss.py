"""The real-vLLM target of MemLens' GPU runs: the checklist's quick test, as a user runs it.

    LLM(model=DIR, load_format="dummy", skip_tokenizer_init=True, max_model_len=32,
        enforce_eager=True, gpu_memory_utilization=0.98)

with the model's real config.json (media/models/gpt-oss-20b) and random weights of the real
shapes: vLLM still runs process_weights_after_loading on them, so the MXFP4 -> kernel-format
conversion runs at real sizes. Options pick the MoE backend, the compiled mode (no
enforce_eager: torch.compile and CUDA graphs), tensor parallelism over N GPUs and one generate call. Prints one
`memlens-target: ` line per result so runs can be compared without MemLens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(HERE, "..", "..", "media", "models", "gpt-oss-20b")


def say(key: str, value: object) -> None:
    print(f"memlens-target: {key} {json.dumps(value)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.normpath(DEFAULT_MODEL))
    parser.add_argument(
        "--moe-backend",
        default="auto",
        help="vLLM's moe_backend: auto (vLLM picks) or marlin (what 16 GB cards get)",
    )
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.98)
    parser.add_argument("--max-model-len", type=int, default=32)
    parser.add_argument(
        "--small-card-defaults",
        action="store_true",
        help="max_num_batched_tokens=8192, max_num_seqs=256: what vLLM picks by itself on a card "
        "under 70 GiB (it reads the card's size through NVML in the calling process, which the "
        "probe's emulation does not change); use with --emulate-gib",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="vLLM's default mode: torch.compile and CUDA graphs (no enforce_eager)",
    )
    parser.add_argument("--generate", type=int, default=0, help="then generate this many tokens")
    parser.add_argument(
        "--tensor-parallel-size",
        type=int,
        default=1,
        help="vLLM's tensor_parallel_size: N worker processes (VllmWorker-0..N-1), one GPU and one rank "
        "each, every rank holding its own shard, workspaces and KV cache; 1 (the default) passes nothing",
    )
    parser.add_argument(
        "--dump-truth",
        action="store_true",
        help="ask every worker to write torch's memory history (memlens_truth plugin)",
    )
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        print(
            f"memlens-target: no config.json in {args.model}; give --model DIR",
            file=sys.stderr,
        )
        return 2
    if args.tensor_parallel_size < 1:
        print("memlens-target: --tensor-parallel-size must be at least 1", file=sys.stderr)
        return 2

    from vllm import LLM, SamplingParams

    kwargs = dict(
        model=args.model,
        load_format="dummy",
        skip_tokenizer_init=True,
        max_model_len=args.max_model_len,
        enforce_eager=not args.compile,
        gpu_memory_utilization=args.gpu_memory_utilization,
    )
    if args.tensor_parallel_size > 1:
        kwargs["tensor_parallel_size"] = args.tensor_parallel_size
    if args.small_card_defaults:
        kwargs.update(max_num_batched_tokens=8192, max_num_seqs=256)
    if args.moe_backend != "auto":
        kwargs["moe_backend"] = args.moe_backend
    say("llm_kwargs", kwargs)
    started = time.perf_counter()
    llm = LLM(**kwargs)
    say("startup_seconds", round(time.perf_counter() - started, 3))
    if args.generate:
        params = SamplingParams(max_tokens=args.generate, temperature=0.0, detokenize=False, ignore_eos=True)
        outputs = llm.generate([{"prompt_token_ids": [200006, 17360, 200008, 3575]}], params)
        say("generated_token_ids", list(outputs[0].outputs[0].token_ids))
    if args.dump_truth:
        from memlens_truth import dump_snapshot

        say("truth_snapshots", llm.collective_rpc(dump_snapshot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
