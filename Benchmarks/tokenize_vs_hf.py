#!/usr/bin/env python3
"""Encoding speed: Quill against Hugging Face `tokenizers`, in one run, on the same text.

    pip install tokenizers gguf            # the peer; Quill itself needs neither
    swift build -c release
    python3 Benchmarks/tokenize_vs_hf.py [--quill .build/release/quill] [--model GGUF]

Text: 5 MB of English (Shakespeare, from the cache scripts/setup fills) and 2 MB of Chinese
(唐诗三百首, 宋词一百首, 论语 ... from Debian's fortunes-zh, and the Debian Reference in Chinese),
one document per line. Both tokenizers are SmolLM2's (the GGUF's vocabulary, HF's pipeline built as
the model's tokenizer.json has it). Each side: best of 3, one thread (TOKENIZERS_PARALLELISM=false
for HF), then batch mode on all cores.
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
best, tokens = 1e9, 0
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); enc = tk.encode_batch(lines, add_special_tokens=False); best = min(best, time.perf_counter() - t)
    tokens = sum(len(e.ids) for e in enc)
print(json.dumps({"seconds": best, "tokens": tokens}))
"""

def hf(path, parallel, repeat):
    env = dict(os.environ, TOKENIZERS_PARALLELISM="true" if parallel else "false", RAYON_NUM_THREADS=str(os.cpu_count()))
    out = subprocess.run([sys.executable, "-c", HF_RUNNER, path, str(repeat), os.path.join(ROOT, "Tests/QuillTokenizersTests/Fixtures")],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def quill(binary, model, path, repeat):
    out = subprocess.run([binary, "tokenize", "bench", "--json", "--repeat", str(repeat), "-t", model, path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    ap.add_argument("--model", default=f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"cpu: {cpu_features()}", flush=True)
    tmp = tempfile.mkdtemp()
    print(f"cores: {os.cpu_count()}; tokenizer: {os.path.basename(args.model)}")
    print(f"{'text':<10}{'MB':>6}  {'HF 1 thread':>12}{'Quill 1 thread':>16}{'ratio':>7}  {'HF batch':>10}{'Quill batch':>13}{'ratio':>7}")
    for name, lines in (("English", english()), ("Chinese", chinese())):
        path = os.path.join(tmp, f"{name}.txt")
        with open(path, "w", encoding="utf-8", newline="") as f: f.writelines(lines)
        mb = os.path.getsize(path) / 1e6
        h1, hn = hf(path, False, args.repeat), hf(path, True, args.repeat)
        q = quill(args.quill, args.model, path, args.repeat)
        if q["tokens"] != h1["tokens"]:
            print(f"  warning: token counts differ: HF {h1['tokens']}, Quill {q['tokens']}")
        rate = lambda s: mb / s
        print(f"{name:<10}{mb:>6.2f}  {rate(h1['seconds']):>8.2f} MB/s{rate(q['seconds_1']):>10.2f} MB/s{h1['seconds'] / q['seconds_1']:>6.2f}x"
              f"  {rate(hn['seconds']):>6.2f} MB/s{rate(q['seconds_n']):>7.2f} MB/s{hn['seconds'] / q['seconds_n']:>6.2f}x")

if __name__ == "__main__":
    main()
