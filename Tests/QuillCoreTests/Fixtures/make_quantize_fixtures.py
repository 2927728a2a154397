#!/usr/bin/env python3
"""Reference quantization of fp32 rows into every type Quill writes, from two outside sources:
gguf-py's `quants.quantize` (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) and ggml itself
(`ggml_quantize_chunk` in the libggml-base that Benchmarks/build_llama_cpp.sh builds, for every
type, the K-quants included). Where both exist they must agree, or this script stops.

    pip install gguf numpy && Benchmarks/build_llama_cpp.sh
    python3 Tests/QuillCoreTests/Fixtures/make_quantize_fixtures.py

Writes quant/quantize.input.f32 (ROWS rows of COLS little-endian float32: Gaussian weights at
several scales, and the edge cases a quantizer gets wrong: an all-zero row, equal magnitudes of
both signs, one outlier, values near the f16 subnormals, a constant row, a row of exact ties at
.5 after scaling) and quant/quantize.<type>.bytes; and, for llama-quantize --imatrix,
quant/quantize.importance.f32 (one weight per column, as an importance matrix gives: log-normal,
a few columns far above the rest, one at zero) and quant/quantize.<type>.imatrix.bytes from ggml
with those weights (every type that uses them).
"""
import ctypes, os, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quant")
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
LIB = os.path.join(os.environ.get("LLAMA_CPP_BUILD", os.path.join(CACHE, "llama.cpp-build")), "bin", "libggml-base.so")
ROWS, COLS = 12, 512
TYPES = [T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
GGUF_PY = {T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1}
WEIGHTED = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


def rows():
    rng = np.random.default_rng(20261207)
    x = np.empty((ROWS, COLS), dtype=np.float32)
    for r in range(6):
        x[r] = rng.standard_normal(COLS) * [0.02, 0.1, 1.0, 3e-3, 40.0, 0.05][r]
    x[6] = 0
    x[7] = np.tile([0.5, -0.5, 0.25, -0.25], COLS // 4)
    x[8] = rng.standard_normal(COLS) * 0.01; x[8, 77] = 5.0
    x[9] = rng.standard_normal(COLS) * 1e-7
    x[10] = 0.125
    x[11] = (rng.integers(-16, 16, COLS) + 0.5) / 16
    x[2, :40] = 0                                # a zero block inside a row
    return x


def importance():
    rng = np.random.default_rng(7)
    w = np.exp(rng.standard_normal(COLS) * 1.5).astype(np.float32) * 0.01
    w[[3, 100, 301]] *= 200                      # outlier channels, as real activations have
    w[17] = 0
    return w


def ggml_quantize(x, qtype, weights=None):
    lib = ctypes.CDLL(LIB)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    out = np.zeros(ROWS * COLS // block * size, dtype=np.uint8)
    src = np.ascontiguousarray(x)
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float32)
    n = lib.ggml_quantize_chunk(int(qtype), src.ctypes.data, out.ctypes.data, 0, ROWS, COLS,
                                None if w is None else w.ctypes.data)
    assert n == out.size, (qtype.name, n, out.size)
    return out


def main():
    os.makedirs(HERE, exist_ok=True)
    x = rows()
    x.astype("<f4").tofile(os.path.join(HERE, "quantize.input.f32"))
    for qtype in TYPES:
        ours = ggml_quantize(x, qtype)
        if qtype in GGUF_PY:
            py = quantize(x, qtype).view(np.uint8).reshape(-1)
            if not np.array_equal(py, ours):
                sys.exit(f"{qtype.name}: gguf-py and ggml disagree on {(py != ours).sum()} bytes")
        ours.tofile(os.path.join(HERE, f"quantize.{qtype.name.lower()}.bytes"))
        print(f"{qtype.name}: {ours.size} bytes{' (gguf-py agrees)' if qtype in GGUF_PY else ''}")
    w = importance()
    w.astype("<f4").tofile(os.path.join(HERE, "quantize.importance.f32"))
    for qtype in WEIGHTED:
        weighted = ggml_quantize(x, qtype, w)
        changed = (weighted != ggml_quantize(x, qtype)).sum()
        weighted.tofile(os.path.join(HERE, f"quantize.{qtype.name.lower()}.imatrix.bytes"))
        print(f"{qtype.name} with importance: {weighted.size} bytes, {changed} differ from the unweighted")


if __name__ == "__main__":
    main()
