"""save_safetensors(path, {name: torch.Tensor}): a float32 safetensors file
(header padded to 8 bytes), as the ONNX test generators (gen_models.py,
gen_graphs.py) write their reference inputs and outputs. Plain struct + json
so the files do not depend on the safetensors package."""
import json
import struct


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        a = t.numpy().astype("<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
