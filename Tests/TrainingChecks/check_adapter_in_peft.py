#!/usr/bin/env python3
"""A Quill LoRA adapter in HF PEFT: load it on the same base and compare logits with Quill's.

    pip install torch transformers peft gguf
    quill train --lora ... --out runs/NAME            # writes runs/NAME/adapter
    python3 Tests/TrainingChecks/check_adapter_in_peft.py MODEL.gguf runs/NAME/adapter [--quill .build/release/quill]

transformers dequantizes the GGUF (and undoes llama.cpp's q/k row permutation, as Quill does);
PeftModel.from_pretrained loads adapter_config.json + adapter_model.safetensors. The same tokens
(English and Chinese text) go through both; the script prints the largest logit difference and
fails above 1e-3.
"""
import argparse, json, os, subprocess, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("adapter")
ap.add_argument("--quill", default=os.path.join(os.path.dirname(__file__), "../../.build/release/quill"))
a = ap.parse_args()
text = "Shall I compare thee to a summer's day? 床前明月光，疑是地上霜。"
tok = AutoTokenizer.from_pretrained(os.path.dirname(a.model), gguf_file=os.path.basename(a.model))
ids = tok(text)["input_ids"]
base = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.model), gguf_file=os.path.basename(a.model), dtype=torch.float32)
model = PeftModel.from_pretrained(base, a.adapter).eval()
with torch.no_grad():
    theirs = model(torch.tensor([ids])).logits[0]
out = subprocess.run([a.quill, "train", "logits", "-m", a.model, "--adapter", a.adapter, "--tokens", ",".join(map(str, ids))],
                     check=True, capture_output=True, text=True).stdout
ours = torch.tensor(json.loads(out))
diff = (ours - theirs).abs().max().item()
top = (ours.argmax(-1) == theirs.argmax(-1)).float().mean().item()
print(f"{len(ids)} tokens: max |logit difference| {diff:.2e}, same top-1 at {top:.0%} of positions")
sys.exit(0 if diff < 1e-3 else 1)
