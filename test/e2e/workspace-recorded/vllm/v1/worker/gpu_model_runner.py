# Stand-in for vLLM 0.26.0's module of this path: only the def lines the recorded runs measured.


class GPUModelRunner:
    def load_model(self, load_dummy_weights=False):
        raise NotImplementedError("a stand-in: open vLLM's own source for the real function")

    def profile_run(self):
        raise NotImplementedError("a stand-in: open vLLM's own source for the real function")

    def initialize_kv_cache(self, kv_cache_config):
        raise NotImplementedError("a stand-in: open vLLM's own source for the real function")
