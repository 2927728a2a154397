#!/usr/bin/env python3
"""Prompt processing (pp512, and chat-sized pp128 / pp32) and generation (tg128): Quill against
llama.cpp's llama-bench, in one run.

    swift build -c release
    python3 Benchmarks/generate_vs_llamacpp.py [--model GGUF|NAME] [--repetitions 3] [--formats Q4_1,Q8_0,F16]
            [--tests pp512,tg128]
    python3 Benchmarks/generate_vs_llamacpp.py --model gemma-3-270m --formats file --tests pp512,pp128,pp32,tg128

llama-bench, llama-quantize: built from the cached llama-cpp-python sdist by
Benchmarks/build_llama_cpp.sh (once). A format other than `file` (the model as given) is a
conversion of the model made by llama-quantize. `--model` takes a path or the start of a cached
model's name (qwen2.5-coder-1.5b, gemma-3-270m: `QUILL_MODELS=all scripts/setup`). Both programs run the same GGUF on 2 threads with the same token counts, in
alternating rounds (llama-bench one repetition, then quill bench one repetition, each after its
own warm-up run), so that a slow spell of a shared machine falls on both; each prints mean ± sd
over the rounds, and the ratio is of the means.
"""
import argparse, json, os, re, statistics, subprocess
from machine import cpu_features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))

def llama_bench(bin_dir, model, prompts, generate):
    args = [f"{bin_dir}/llama-bench", "-m", model, "-t", "2", "-r", "1", "-o", "json",
            "-p", ",".join(map(str, prompts)) if prompts else "0", "-n", str(generate)]
    rows = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    rates = {f"pp{r['n_prompt']}": r["avg_ts"] for r in rows if r["n_prompt"] > 0}
    rates.update({f"tg{r['n_gen']}": r["avg_ts"] for r in rows if r["n_gen"] > 0})
    return rates

def quill(binary, model, prompts, generate):
    rates = {}
    for i, p in enumerate(prompts or [0]):
        n = generate if i == 0 else 0
        if p == 0 and n == 0: continue
        out = subprocess.run([binary, "bench", "-m", model, "-p", str(p), "-n", str(n), "-r", "1", "--threads", "2"],
                             check=True, capture_output=True, text=True).stdout
        for key in ([f"pp{p}"] if p else []) + ([f"tg{n}"] if n else []):
            rates[key] = float(re.search(rf"{key}:\s+([0-9.]+)", out).group(1))
    return rates

def resolve(model):
    if os.path.exists(model): return model
    names = [n for n in sorted(os.listdir(f"{CACHE}/models")) if n.startswith(model) and n.endswith(".gguf")]
    if len(names) != 1: raise SystemExit(f"{model}: no single cached GGUF of that name ({names})")
    return f"{CACHE}/models/{names[0]}"

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
    ap.add_argument("--formats", default="Q4_1,Q8_0,F16", help="file (the model as given) or llama-quantize types")
    ap.add_argument("--tests", default="pp512,tg128")
    a = ap.parse_args()
    model = resolve(a.model)
    tests = a.tests.split(",")
    prompts = [int(t[2:]) for t in tests if t.startswith("pp")]
    generate = max([int(t[2:]) for t in tests if t.startswith("tg")], default=0)
    print(f"cpu: {cpu_features()}", flush=True)
    bin_dir = subprocess.run([os.path.join(ROOT, "Benchmarks/build_llama_cpp.sh")], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"model: {os.path.basename(model)}, 2 threads, {a.repetitions} repetitions")
    print(f"{'format':<7}{'test':<7}{'llama.cpp tok/s':>18}{'Quill tok/s':>18}{'ratio':>8}", flush=True)
    for kind in a.formats.split(","):
        path = model if kind == "file" or f".{kind}." in os.path.basename(model) else convert(bin_dir, model, kind)
        rounds = [(llama_bench(bin_dir, path, prompts, generate), quill(a.quill, path, prompts, generate)) for _ in range(a.repetitions)]
        for test in tests:
            (lm, ls), (qm, qs) = (summary([r[side][test] for r in rounds]) for side in (0, 1))
            print(f"{kind:<7}{test:<7}{lm:>11.1f} ± {ls:<4.1f}{qm:>11.1f} ± {qs:<4.1f}{qm / lm:>7.2f}x", flush=True)

if __name__ == "__main__":
    main()
