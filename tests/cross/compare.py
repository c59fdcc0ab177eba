#!/usr/bin/env python3
"""Compare two safetensors files tensor by tensor (docs/portability.md):
for each name, 'same bits' or the max absolute difference and how many
elements differ. Metadata (the JSON header's __metadata__) is not compared.
Exit 1 if a tensor whose name starts with one of --must-match differs.
  python3 tests/cross/compare.py A.safetensors B.safetensors [--must-match own.]
  python3 tests/cross/compare.py --hashes A.safetensors PREFIX   (name, dtype,
      shape and SHA-256 of each tensor whose name starts with PREFIX: the
      form of tests/cross/own_bits.txt, which tests/cross/run.sh checks)
Plain Python (struct + array): no numpy or torch needed."""
import array, hashlib, json, struct, sys

def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], blob[base + a:base + b])
    return out

def hashes(path, prefix):
    for name, (dtype, shape, blob) in sorted(load(path).items()):
        if name.startswith(prefix):
            print(name, dtype, "x".join(map(str, shape)), hashlib.sha256(blob).hexdigest())
    return 0

def main(argv):
    if argv[:1] == ["--hashes"]:
        return hashes(argv[1], argv[2])
    must = [argv[i + 1] for i, a in enumerate(argv) if a == "--must-match"]
    files = [a for i, a in enumerate(argv) if a != "--must-match" and (i == 0 or argv[i - 1] != "--must-match")]
    x, y = load(files[0]), load(files[1])
    bad = 0
    for name in sorted(set(x) | set(y)):
        if name not in x or name not in y:
            print(f"{name}: only in {'first' if name in x else 'second'} file"); bad += 1; continue
        (dx, sx, bx), (dy, sy, by) = x[name], y[name]
        if (dx, sx) != (dy, sy):
            print(f"{name}: {dx}{sx} vs {dy}{sy}"); bad += 1; continue
        if bx == by:
            print(f"{name}: same bits ({len(bx)} bytes)"); continue
        fa, fb = array.array("f", bx), array.array("f", by)
        diffs = [abs(p - q) for p, q in zip(fa, fb) if p != q or struct.pack("<f", p) != struct.pack("<f", q)]
        scale = max(max((abs(v) for v in fa), default=0.0), 1e-30)
        print(f"{name}: DIFFERS in {len(diffs)}/{len(fa)} elements, max abs diff {max(diffs):.3g} "
              f"(max |value| {scale:.3g})")
        if any(name.startswith(m) for m in must):
            bad += 1
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
