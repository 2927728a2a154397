#!/usr/bin/env python3
"""Prompt processing (pp512) and generation (tg128): Quill against llama.cpp, in one run.

    pip install llama-cpp-python==0.3.36    # builds llama.cpp from source
    swift build -c release
    python3 Benchmarks/generate_vs_llamacpp.py [--model GGUF] [--repetitions 3]

Both run the same GGUF on 2 threads with the same token counts. llama.cpp goes through
llama-cpp-python's low-level eval (one Python call per generated token, argmax in numpy), so
its tg figure carries a little Python overhead; llama-bench itself would be somewhat faster.
"""
import argparse, os, re, statistics, subprocess, time
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))

def llama_cpp(model, pp, tg, reps):
    from llama_cpp import Llama
    llm = Llama(model_path=model, n_ctx=pp + tg + 8, n_batch=pp, n_threads=2, verbose=False)
    rng = np.random.default_rng(42)
    pps, tgs = [], []
    for r in range(reps + 1):
        prompt = rng.integers(0, llm.n_vocab(), pp).tolist()
        llm.reset(); t = time.perf_counter(); llm.eval(prompt); p = pp / (time.perf_counter() - t)
        llm.reset(); tok = int(rng.integers(0, llm.n_vocab())); t = time.perf_counter()
        for _ in range(tg):
            llm.eval([tok]); tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        g = tg / (time.perf_counter() - t)
        if r: pps.append(p); tgs.append(g)
    return pps, tgs

def quill(binary, model, pp, tg, reps):
    out = subprocess.run([binary, "bench", "-m", model, "-p", str(pp), "-n", str(tg), "-r", str(reps)],
                         check=True, capture_output=True, text=True).stdout
    pick = lambda key: float(re.search(rf"{key}:\s+([0-9.]+)", out).group(1))
    return pick(f"pp{pp}"), pick(f"tg{tg}")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    ap.add_argument("--repetitions", type=int, default=3)
    a = ap.parse_args()
    lp, lt = llama_cpp(a.model, 512, 128, a.repetitions)
    qp, qt = quill(a.quill, a.model, 512, 128, a.repetitions)
    m = statistics.mean
    print(f"model: {os.path.basename(a.model)}, 2 threads")
    print(f"{'test':<8}{'llama.cpp tok/s':>18}{'Quill tok/s':>14}{'ratio':>8}")
    print(f"{'pp512':<8}{m(lp):>12.1f} ± {statistics.stdev(lp):<4.1f}{qp:>14.1f}{qp / m(lp):>7.2f}x")
    print(f"{'tg128':<8}{m(lt):>12.1f} ± {statistics.stdev(lt):<4.1f}{qt:>14.1f}{qt / m(lt):>7.2f}x")

if __name__ == "__main__":
    main()
