"""Stand-in for vLLM in the MemLens end-to-end tests (same module paths, tiny bodies)."""
