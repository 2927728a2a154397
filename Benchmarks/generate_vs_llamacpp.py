#!/usr/bin/env python3
"""Prompt processing (pp512) and generation (tg128): Quill against llama.cpp's llama-bench, in one run.

    swift build -c release
    python3 Benchmarks/generate_vs_llamacpp.py [--model GGUF] [--repetitions 3] [--formats Q4_1,Q8_0,F16]

llama-bench, llama-quantize: built from the cached llama-cpp-python sdist by
Benchmarks/build_llama_cpp.sh (once). Q8_0 and F16 are conversions of the model made by
llama-quantize. Both programs run the same GGUF on 2 threads with the same token counts, in
alternating rounds (llama-bench one repetition, then quill bench one repetition, each after its
own warm-up run), so that a slow spell of a shared machine falls on both; each prints mean ± sd
over the rounds, and the ratio is of the means.
"""
import argparse, json, os, re, statistics, subprocess
from machine import cpu_features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))

def llama_bench(bin_dir, model):
    out = subprocess.run([f"{bin_dir}/llama-bench", "-m", model, "-t", "2", "-p", "512", "-n", "128",
                          "-r", "1", "-o", "json"], check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    pick = lambda key: next(r for r in rows if r[key] > 0)["avg_ts"]
    return pick("n_prompt"), pick("n_gen")

def quill(binary, model):
    out = subprocess.run([binary, "bench", "-m", model, "-p", "512", "-n", "128", "-r", "1"],
                         check=True, capture_output=True, text=True).stdout
    pick = lambda key: float(re.search(rf"{key}:\s+([0-9.]+)", out).group(1))
    return pick("pp512"), pick("tg128")

def summary(rates):
    return statistics.mean(rates), statistics.stdev(rates) if len(rates) > 1 else 0.0

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
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--formats", default="Q4_1,Q8_0,F16")
    a = ap.parse_args()
    print(f"cpu: {cpu_features()}", flush=True)
    bin_dir = subprocess.run([os.path.join(ROOT, "Benchmarks/build_llama_cpp.sh")], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"model: {os.path.basename(a.model)} and conversions, 2 threads, {a.repetitions} repetitions")
    print(f"{'format':<7}{'test':<7}{'llama.cpp tok/s':>18}{'Quill tok/s':>18}{'ratio':>8}")
    for kind in a.formats.split(","):
        model = a.model if kind == "Q4_1" else convert(bin_dir, a.model, kind)
        rounds = [(llama_bench(bin_dir, model), quill(a.quill, model)) for _ in range(a.repetitions)]
        ref = [summary([r[0][i] for r in rounds]) for i in range(2)]
        ours = [summary([r[1][i] for r in rounds]) for i in range(2)]
        for test, (lm, ls), (qm, qs) in zip(["pp512", "tg128"], ref, ours):
            print(f"{kind:<7}{test:<7}{lm:>11.1f} ± {ls:<4.1f}{qm:>11.1f} ± {qs:<4.1f}{qm / lm:>7.2f}x")

if __name__ == "__main__":
    main()
