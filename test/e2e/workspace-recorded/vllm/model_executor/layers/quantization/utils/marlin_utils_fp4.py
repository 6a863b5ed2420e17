# Stand-in for vLLM 0.26.0's module of this path: only the def lines the recorded runs measured.


def prepare_moe_mxfp4_layer_for_marlin(layer, w13, w13_scale, w2, w2_scale):
    raise NotImplementedError("a stand-in: open vLLM's own source for the real function")


def _repack_marlin_experts(weight, size_n, size_k, num_bits):
    raise NotImplementedError("a stand-in: open vLLM's own source for the real function")
