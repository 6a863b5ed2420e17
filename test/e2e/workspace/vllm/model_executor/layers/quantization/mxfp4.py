"""Stand-in for vLLM's mxfp4 quantization method (a class whose methods are hotspots)."""

from __future__ import annotations

from typing import Any

from vllm.model_executor.layers.quantization.utils.marlin_utils import (
    marlin_make_workspace_new,
)
from vllm.model_executor.layers.quantization.utils.marlin_utils_fp4 import (
    prepare_moe_fp4_layer_for_marlin,
)


class Mxfp4MoEMethod:
    def create_weights(self, layer: Any) -> None:
        layer.marlin_weights = None

    def process_weights_after_loading(self, layer: Any) -> None:
        prepare_moe_fp4_layer_for_marlin(layer)
        layer.workspace = marlin_make_workspace_new("cpu")
