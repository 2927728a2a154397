#!/usr/bin/env python3
"""`quill quantize` against llama.cpp on the default model (SmolLM2-135M), for every type:

    Benchmarks/build_llama_cpp.sh && pip install gguf
    python3 Tests/FormatChecks/check_quantize.py [--types Q4_K_M,Q8_0] [--chunks 4] [--quill .build/release/quill]

1. An F16 file from the published Q4_1 by `quill quantize` and by `llama-quantize --allow-requantize`:
   identical files.
2. Each TYPE from that F16 file by both tools: identical files (tensor by tensor first, with
   Tests/FormatChecks/compare_gguf.py, then byte for byte), and gguf-py reads Quill's file
   without a warning.
3. llama.cpp runs Quill's file: `llama-perplexity` over the first CHUNKS chunks of 512 tokens of
   Julius Caesar within 0.5% of `quill perplexity` on the same file (or, for the types Quill runs
   in fp32 where llama.cpp rounds activations to 8 bits, of llama-perplexity on the same weights
   dequantized to F32), and its mean KL divergence from
   the F16 file's logits (`--kl-divergence`) printed for each type; llama-server's greedy tokens
   for 4 prompts (English, Chinese, code) equal to quill serve's up to near-ties (where the two
   part, Quill's top two choices are within 0.72 nats, the drift llama.cpp itself shows between
   its AVX2 and AVX-512 builds on the same file).
Exits 1 on the first failure, naming it.
"""
import filecmp, os, shutil, sys
from llama_tools import CACHE, fail, failures, greedy_agrees, reads_cleanly, run, same_tensors
import llama_tools

PORT = 8098

a, bin_dir, work = llama_tools.setup("quantize")


def same_bytes(ours, theirs, label):
    summary = same_tensors(ours, theirs, label)
    # the whole file: metadata in llama-quantize's order, alignment and padding too
    if not filecmp.cmp(ours, theirs, shallow=False):
        fail(f"{label}: the tensors are equal but the files are not")
        return summary
    return "identical files"


def llama_perplexity(path, *extra):
    return llama_tools.llama_perplexity(bin_dir, path, a.chunks, *extra)


source = os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf")
f16, f16_ref = os.path.join(work, "smollm2.F16.gguf"), os.path.join(work, "smollm2.F16.llama.gguf")
run(a.quill, "quantize", source, f16, "F16", "--threads", 2)
run(f"{bin_dir}/llama-quantize", "--allow-requantize", source, f16_ref, "F16", 2)
print(f"F16 from the Q4_1 file: {same_bytes(f16, f16_ref, 'F16 from Q4_1')}", flush=True)
base_logits = os.path.join(work, "f16.kld")
f16_ppl, _ = llama_perplexity(f16, "--kl-divergence-base", base_logits)
print(f"{'type':<8}{'tensors':>8}{'against llama-quantize':>32}{'llama PPL':>11}{'Quill PPL':>11}{'diff':>8}{'KLD vs F16':>12}{'greedy':>16}")
for kind in a.types.split(","):
    ours, theirs = os.path.join(work, f"quill.{kind}.gguf"), os.path.join(work, f"llama.{kind}.gguf")
    run(a.quill, "quantize", f16, ours, kind, "--threads", 2)
    run(f"{bin_dir}/llama-quantize", f16, theirs, kind, 2)
    summary = same_bytes(ours, theirs, kind)
    os.remove(theirs)
    tensors = reads_cleanly(ours)
    _, kld = llama_perplexity(ours, "--kl-divergence-base", base_logits, "--kl-divergence")
    ppl, quill_ppl, diff = llama_tools.perplexities_agree(bin_dir, a.quill, ours, a.chunks, kind)
    equal, ties = greedy_agrees(bin_dir, a.quill, ours, PORT)
    share = summary if summary == "identical files" else summary.split(";")[-1].strip().split("%")[0] + "% of tensor bytes"
    print(f"{kind:<8}{tensors:>8}{share:>32}{ppl:>11.4f}{quill_ppl:>11.4f}{100 * diff:>7.2f}%{kld if kld is not None else float('nan'):>12.6f}"
          f"{f'{equal} equal, {ties} tie':>16}", flush=True)
    os.remove(ours)
print(f"F16 llama-perplexity: {f16_ppl:.4f} over {a.chunks} chunks of 512 (Julius Caesar)")
if failures:
    sys.exit(f"{len(failures)} failures: {failures} (files kept in {work})")
shutil.rmtree(work)
print("ok")
