"""Import-only stand-in for `albumentations` (ELITE's datasets.py imports it as `A` for its
training augmentations; CustomDatasetWithBG, the inference dataset, does not use it). Any
attribute access fails loudly."""


def __getattr__(name):
    raise AttributeError(f"albumentations stand-in: {name} is not available in the reference env")
