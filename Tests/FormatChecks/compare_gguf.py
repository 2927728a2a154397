#!/usr/bin/env python3
"""Compare two GGUF files tensor by tensor: names and order, types, shapes, and how many blocks
are byte-identical; with --dequantized, also the largest difference of the dequantized values.
Prints one line per tensor that differs and a summary; exits 1 if names, types or shapes differ."""
import argparse, sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ap = argparse.ArgumentParser()
ap.add_argument("a"); ap.add_argument("b")
ap.add_argument("--quiet", action="store_true")
args = ap.parse_args()
ra, rb = GGUFReader(args.a), GGUFReader(args.b)
ta = {t.name: t for t in ra.tensors}; tb = {t.name: t for t in rb.tensors}
ok = True
if [t.name for t in ra.tensors] != [t.name for t in rb.tensors]:
    print("tensor order or names differ"); ok = False
same_bytes = total_bytes = 0
for name, a in ta.items():
    b = tb.get(name)
    if b is None or a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape):
        print(f"{name}: {a.tensor_type.name}{list(a.shape)} vs {b.tensor_type.name + str(list(b.shape)) if b is not None else 'missing'}")
        ok = False; continue
    x, y = np.asarray(a.data).view(np.uint8).ravel(), np.asarray(b.data).view(np.uint8).ravel()
    total_bytes += x.size; same = int((x == y).sum()); same_bytes += same
    if same != x.size and not args.quiet:
        da = dequantize(np.asarray(a.data), a.tensor_type).astype(np.float64)
        db = dequantize(np.asarray(b.data), b.tensor_type).astype(np.float64)
        rel = np.abs(da - db).max() / max(np.abs(db).max(), 1e-30)
        print(f"{name} {a.tensor_type.name}: {100 * same / x.size:.4f}% of bytes equal, max |diff| / max |x| = {rel:.3g}")
print(f"{'same types and shapes' if ok else 'DIFFERENT types or shapes'}; {100 * same_bytes / max(total_bytes, 1):.4f}% of tensor bytes equal")
sys.exit(0 if ok else 1)
