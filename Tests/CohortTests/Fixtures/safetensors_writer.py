"""Writes a PyTorch state_dict as a safetensors file, for the fixture scripts (no safetensors package needed)."""
import json
import struct

import numpy as np


def write_safetensors(state, path):
    """safetensors as safetensors.torch.save_file writes it: F32, and I64 for the batch counters."""
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        array = tensor.detach().contiguous().numpy()
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[array.dtype]
        data = array.astype("<f4" if dtype == "F32" else "<i8").tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
