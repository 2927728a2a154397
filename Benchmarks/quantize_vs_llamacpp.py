#!/usr/bin/env python3
"""`quill quantize` against `llama-quantize` (llama.cpp 0c1e570, Benchmarks/build_llama_cpp.sh), both
with 2 threads, alternating which goes first round by round, on the same F16 file:

    python3 Benchmarks/quantize_vs_llamacpp.py [--model NAME|GGUF] [--types Q4_K_M,Q8_0] [--repetitions 3] [--imatrix FILE]

The F16 file is made first by `quill quantize MODEL F16` (the exact dequantization of the published
file). Prints the CPU, each tool's median wall time per type, the ratio, and whether the two outputs
are byte-identical. With --imatrix, both quantize with that importance matrix (`quill eval --imatrix`
or llama-imatrix makes one).
"""
import argparse, filecmp, os, statistics, subprocess, tempfile, time
from machine import cpu_features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))


def timed(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--types", default="Q4_K_M,Q8_0")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    ap.add_argument("--imatrix", help="an importance matrix both tools quantize with")
    a = ap.parse_args()
    model = a.model if os.path.exists(a.model) else os.path.join(CACHE, "models", a.model)
    if not os.path.exists(model):
        model = next(os.path.join(CACHE, "models", f) for f in sorted(os.listdir(os.path.join(CACHE, "models"))) if f.startswith(a.model))
    bin_dir = subprocess.run([os.path.join(ROOT, "Benchmarks/build_llama_cpp.sh")], check=True, capture_output=True,
                             text=True).stdout.strip().splitlines()[-1]
    work = tempfile.mkdtemp(prefix="quill-quantize-bench-", dir=os.environ.get("TMPDIR", "/tmp"))
    f16 = os.path.join(work, "model.F16.gguf")
    subprocess.run([a.quill, "quantize", model, f16, "F16"], check=True, capture_output=True)
    print(f"cpu: {cpu_features()}")
    print(f"model: {os.path.basename(model)} as F16 ({os.path.getsize(f16) / 1e9:.2f} GB), 2 threads, {a.repetitions} rounds"
          + (f", importance matrix {a.imatrix}" if a.imatrix else ""))
    weighted = ["--imatrix", a.imatrix] if a.imatrix else []
    print(f"{'type':<8}{'llama-quantize s':>18}{'quill quantize s':>18}{'ratio':>8}  same bytes")
    for kind in a.types.split(","):
        ours, theirs = os.path.join(work, "quill.gguf"), os.path.join(work, "llama.gguf")
        quill = [a.quill, "quantize", f16, ours, kind, "--threads", "2", *weighted]
        llama = [f"{bin_dir}/llama-quantize", *weighted, f16, theirs, kind, "2"]
        times = {"quill": [], "llama": []}
        for r in range(a.repetitions):
            for side in (("quill", "llama") if r % 2 else ("llama", "quill")):
                times[side].append(timed(quill if side == "quill" else llama))
        q, l = statistics.median(times["quill"]), statistics.median(times["llama"])
        print(f"{kind:<8}{l:>18.2f}{q:>18.2f}{l / q:>7.2f}x  {filecmp.cmp(ours, theirs, shallow=False)}", flush=True)
        for p in (ours, theirs):
            os.remove(p)
    os.remove(f16)


if __name__ == "__main__":
    main()
