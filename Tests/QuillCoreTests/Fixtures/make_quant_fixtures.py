#!/usr/bin/env python3
"""Reference dequantization for every GGUF weight type, from gguf-py (bit-exact with ggml).

    pip install gguf numpy
    python3 Tests/QuillCoreTests/Fixtures/make_quant_fixtures.py

For each type: 16 blocks of random bytes whose f16 scale fields hold random finite values
(random bytes there would be NaN/Inf half the time), written to quant/<type>.blocks, and gguf-py's
dequantization of them to quant/<type>.f32 (little-endian float32). Also, from the default model
(SmolLM2 Q4_1 GGUF), the first 4 rows of a Q4_1 and a Q8_0 tensor dequantized by gguf-py
(quant/smollm2.<tensor>.f32), to check real weights too.
"""
import os
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quant")
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
rng = np.random.default_rng(20261129)

# byte offsets of the f16 scale fields inside one block
HALF_FIELDS = {
    T.F16: [], T.BF16: [], T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}

def main():
    os.makedirs(HERE, exist_ok=True)
    for qtype, halves in HALF_FIELDS.items():
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = 16 if block_size > 1 else 512
        raw = rng.integers(0, 256, size=(blocks, type_size), dtype=np.uint8)
        for off in halves:
            scales = (rng.standard_normal(blocks) * 0.05).astype(np.float16)
            raw[:, off:off + 2] = scales.view(np.uint8).reshape(blocks, 2)
        if qtype == T.F16:       # keep to finite halves, plus a few subnormals and signed zeros
            vals = (rng.standard_normal(blocks) * 100).astype(np.float16)
            vals[:4] = np.array([0.0, -0.0, 6e-8, -3e-6], dtype=np.float16)
            raw = vals.view(np.uint8).reshape(blocks, 2)
        if qtype == T.BF16:
            vals = (rng.standard_normal(blocks) * 100).astype(np.float32).view(np.uint32) >> 16
            raw = vals.astype(np.uint16).view(np.uint8).reshape(blocks, 2)
        name = qtype.name.lower()
        raw.tofile(os.path.join(HERE, f"{name}.blocks"))
        out = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        out.astype("<f4").tofile(os.path.join(HERE, f"{name}.f32"))
        print(f"{name}: {blocks} blocks, {out.size} values")

    model = os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    reader = gguf.GGUFReader(model)
    for tensor_name in ("blk.0.attn_q.weight", "token_embd.weight"):
        t = next(t for t in reader.tensors if t.name == tensor_name)
        rows = dequantize(t.data, t.tensor_type)[:4].astype(np.float32)
        rows.astype("<f4").tofile(os.path.join(HERE, f"smollm2.{tensor_name}.f32"))
        print(f"{tensor_name}: {t.tensor_type.name}, 4 rows of {rows.shape[1]}")

if __name__ == "__main__":
    main()
