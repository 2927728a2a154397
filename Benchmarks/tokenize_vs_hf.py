#!/usr/bin/env python3
"""Encoding speed: Quill against Hugging Face `tokenizers`, in one run, on the same text.

    pip install tokenizers gguf            # the peer; Quill itself needs neither
    swift build -c release
    python3 Benchmarks/tokenize_vs_hf.py [--quill .build/release/quill] [--model GGUF] [--threads N]

Text: 5 MB of English (Shakespeare, from the cache scripts/setup fills) and 2 MB of Chinese
(唐诗三百首, 宋词一百首, 论语 ... from Debian's fortunes-zh, and the Debian Reference in Chinese),
one document per line. Both tokenizers are SmolLM2's (the GGUF's vocabulary, HF's pipeline built as
the model's tokenizer.json has it). Each side: best of 3, one thread (TOKENIZERS_PARALLELISM=false
for HF), then batch mode on N threads (RAYON_NUM_THREADS=N for HF, --threads N for Quill; all cores
by default). HF is timed both ways: `encode_batch` (Encoding objects with offsets, what most
callers use) and `encode_batch_fast` (ids only, no offsets: the fair peer of Quill's batch path,
which computes ids only). The sides alternate between repetitions.
"""
import argparse, json, os, re, subprocess, sys, tempfile
from machine import cpu_features

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests/QuillTokenizersTests/Fixtures"))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")

def english(limit=5_000_000):
    lines, size = [], 0
    d = f"{CACHE}/texts/shakespeare"
    for name in sorted(os.listdir(d)):
        for line in open(f"{d}/{name}", encoding="utf-8", errors="replace", newline=""):
            if size >= limit: return lines
            lines.append(line); size += len(line.encode())
    return lines

def chinese(limit=2_000_000):
    lines = []
    for name in ("tang300", "song100", "chinese"):
        lines += [ANSI.sub("", l) for l in open(f"{CACHE}/texts/fortunes-zh/{name}", encoding="utf-8", errors="replace")
                  if l.strip() and l.strip() != "%"]
    import generate
    lines += generate.debian_reference_zh()
    out, size = [], 0
    while size < limit:                      # repeat if the sources fall short
        for l in lines:
            if size >= limit: break
            out.append(l); size += len(l.encode())
    return out

HF_RUNNER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
import generate
tk = generate.smollm2()
text = open(sys.argv[1], encoding="utf-8", newline="").read()
lines = [l + "\n" for l in text.split("\n")]
lines[-1] = lines[-1][:-1]
if not lines[-1]: lines.pop()
encode = tk.encode_batch_fast if sys.argv[4] == "fast" else tk.encode_batch
best, tokens = 1e9, 0
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); enc = encode(lines, add_special_tokens=False); best = min(best, time.perf_counter() - t)
    tokens = sum(len(e.ids) for e in enc)
print(json.dumps({"seconds": best, "tokens": tokens}))
"""

def hf(path, parallel, repeat, threads, fast=False):
    env = dict(os.environ, TOKENIZERS_PARALLELISM="true" if parallel else "false", RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", HF_RUNNER, path, str(repeat), os.path.join(ROOT, "Tests/QuillTokenizersTests/Fixtures"),
                          "fast" if fast else "full"], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def quill(binary, model, path, repeat, threads):
    out = subprocess.run([binary, "tokenize", "bench", "--json", "--repeat", str(repeat), "--threads", str(threads), "-t", model, path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def best(runs, key):
    return min(runs, key=lambda r: r[key])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    ap.add_argument("--model", default=f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of batch mode, both sides")
    args = ap.parse_args()
    print(f"cpu: {cpu_features()}", flush=True)
    tmp = tempfile.mkdtemp()
    print(f"batch threads: {args.threads}; tokenizer: {os.path.basename(args.model)}; MB/s, best of {args.repeat}")
    print(f"{'text':<9}{'MB':>5} {'HF 1 thr':>9}{'Quill 1':>9}{'ratio':>7} {'HF batch':>9}{'HF fast':>9}{'Quill':>8}"
          f"{'vs batch':>9}{'vs fast':>8}")
    for name, lines in (("English", english()), ("Chinese", chinese())):
        path = os.path.join(tmp, f"{name}.txt")
        with open(path, "w", encoding="utf-8", newline="") as f: f.writelines(lines)
        mb = os.path.getsize(path) / 1e6
        h1, hn, hf_fast, q = [], [], [], []
        for r in range(args.repeat):   # one timing per process call, the sides alternating
            sides = [lambda: (h1.append(hf(path, False, 1, args.threads)), hn.append(hf(path, True, 1, args.threads)),
                              hf_fast.append(hf(path, True, 1, args.threads, fast=True))),
                     lambda: q.append(quill(args.quill, args.model, path, 1, args.threads))]
            for side in (sides if r % 2 == 0 else sides[::-1]): side()
        h1, hn, hf_fast = best(h1, "seconds"), best(hn, "seconds"), best(hf_fast, "seconds")
        q1, qn = best(q, "seconds_1"), best(q, "seconds_n")
        if q1["tokens"] != h1["tokens"] or hf_fast["tokens"] != h1["tokens"]:
            print(f"  warning: token counts differ: HF {h1['tokens']} (fast {hf_fast['tokens']}), Quill {q1['tokens']}")
        rate = lambda s: mb / s
        print(f"{name:<9}{mb:>5.2f} {rate(h1['seconds']):>9.2f}{rate(q1['seconds_1']):>9.2f}{h1['seconds'] / q1['seconds_1']:>6.2f}x"
              f" {rate(hn['seconds']):>9.2f}{rate(hf_fast['seconds']):>9.2f}{rate(qn['seconds_n']):>8.2f}"
              f"{hn['seconds'] / qn['seconds_n']:>8.2f}x{hf_fast['seconds'] / qn['seconds_n']:>7.2f}x")

if __name__ == "__main__":
    main()
