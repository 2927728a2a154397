#!/usr/bin/env python3
"""Prompt processing (pp512) and generation (tg128): Quill against llama.cpp's llama-bench, in one run.

    swift build -c release
    python3 Benchmarks/generate_vs_llamacpp.py [--model GGUF] [--repetitions 3] [--formats Q4_1,Q8_0,F16]

llama-bench, llama-quantize: built from the cached llama-cpp-python sdist by
Benchmarks/build_llama_cpp.sh (once). Q8_0 and F16 are conversions of the model made by
llama-quantize. Both programs run the same GGUF on 2 threads with the same token counts, one
after the other, format by format, so that they see the same machine.
"""
import argparse, json, os, re, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))

def llama_bench(bin_dir, model, reps):
    out = subprocess.run([f"{bin_dir}/llama-bench", "-m", model, "-t", "2", "-p", "512", "-n", "128",
                          "-r", str(reps), "-o", "json"], check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    pick = lambda rows, key: next(r for r in rows if r[key] > 0)
    pp, tg = pick(rows, "n_prompt"), pick(rows, "n_gen")
    return (pp["avg_ts"], pp["stddev_ts"]), (tg["avg_ts"], tg["stddev_ts"])

def quill(binary, model, reps):
    out = subprocess.run([binary, "bench", "-m", model, "-p", "512", "-n", "128", "-r", str(reps)],
                         check=True, capture_output=True, text=True).stdout
    pick = lambda key: tuple(map(float, re.search(rf"{key}:\s+([0-9.]+) ± ([0-9.]+)", out).groups()))
    return pick("pp512"), pick("tg128")

def convert(bin_dir, model, kind):
    target = os.path.join(CACHE, "models", os.path.basename(model).replace(".Q4_1.", f".{kind}."))
    if not os.path.exists(target):
        subprocess.run([f"{bin_dir}/llama-quantize", "--allow-requantize", model, target, kind],
                       check=True, capture_output=True)
    return target

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--formats", default="Q4_1,Q8_0,F16")
    a = ap.parse_args()
    bin_dir = subprocess.run([os.path.join(ROOT, "Benchmarks/build_llama_cpp.sh")], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"model: {os.path.basename(a.model)} and conversions, 2 threads, {a.repetitions} repetitions")
    print(f"{'format':<7}{'test':<7}{'llama.cpp tok/s':>18}{'Quill tok/s':>18}{'ratio':>8}")
    for kind in a.formats.split(","):
        model = a.model if kind == "Q4_1" else convert(bin_dir, a.model, kind)
        ref = llama_bench(bin_dir, model, a.repetitions)
        ours = quill(a.quill, model, a.repetitions)
        for test, (lm, ls), (qm, qs) in zip(["pp512", "tg128"], ref, ours):
            print(f"{kind:<7}{test:<7}{lm:>11.1f} ± {ls:<4.1f}{qm:>11.1f} ± {qs:<4.1f}{qm / lm:>7.2f}x")

if __name__ == "__main__":
    main()
