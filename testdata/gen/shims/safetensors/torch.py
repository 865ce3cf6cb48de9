"""Stand-in for `safetensors.torch` (see __init__.py)."""

import safetensors_io


def save_file(tensors, filename, metadata=None):
    safetensors_io.save(tensors, str(filename), metadata=metadata)


def save(tensors, metadata=None):
    return safetensors_io.save_bytes(tensors, metadata=metadata)


def load_file(filename, device="cpu"):
    return safetensors_io.load(str(filename), framework="pt")


def storage_ptr(tensor):
    try:
        return tensor.untyped_storage().data_ptr()
    except Exception:
        return tensor.storage().data_ptr()


def storage_size(tensor):
    try:
        return tensor.untyped_storage().nbytes()
    except Exception:
        return tensor.storage().size() * tensor.element_size()
