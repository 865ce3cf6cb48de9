"""Import-only stand-in for `accelerate` (ELITE's train_global/train_local import it at module
level; their inference functions use nothing of it). Put on sys.path only after diffusers and
transformers are imported, so both still treat accelerate as absent. Calling anything fails."""


class Accelerator:  # noqa: D101 - placeholder
    def __init__(self, *a, **k):
        raise RuntimeError("accelerate stand-in: Accelerator is not available in the reference env")
