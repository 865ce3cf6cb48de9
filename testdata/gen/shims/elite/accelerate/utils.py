"""Stand-in for accelerate.utils (import-only)."""


def set_seed(seed, *a, **k):
    raise RuntimeError("accelerate stand-in: set_seed is not used by the reference generators")
