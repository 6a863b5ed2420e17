"""The demo's target program: MemLens runs this (see .vscode/settings.json, memlens.command)."""

from __future__ import annotations

from memlens_demo.buffers import MiB, where
from memlens_demo.loader import load_model


def main() -> None:
    print(f"loading the demo model into {where()}")
    model = load_model()
    total = sum(
        len(w) if isinstance(w, bytearray) else w.numel() for w in model.weights
    )
    print(f"demo model loaded: {total // MiB} MiB of weights")


if __name__ == "__main__":
    main()
