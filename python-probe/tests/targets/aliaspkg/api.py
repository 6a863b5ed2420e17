from aliaspkg.impl import compute  # noqa: F401  (re-exported; the plan probes aliaspkg.api:compute)
