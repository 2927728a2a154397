#!/usr/bin/env python3
"""Training step time and peak memory: Quill against PyTorch (+ peft), fp32 on CPU, in one run.

    pip install torch transformers peft gguf
    swift build -c release
    python3 Benchmarks/train_vs_pytorch.py [--steps 3] [--rounds 2] [--threads 2] [--only full,lora,gpt2,qwen-lora]

Four workloads, the same threads on both sides (torch.set_num_threads, quill --threads), AdamW
(weight decay 0.01), gradient clipping at 1:
  full       SmolLM2-135M, every weight trained (fp32, dequantized from the cached GGUF), batch 4 x 256
  lora       SmolLM2-135M, LoRA rank 8 (alpha 16) on q_proj and v_proj, the base frozen, batch 4 x 256
  gpt2       GPT-2 124M from random initialization, every weight trained, batch 4 x 256
  qwen-lora  Qwen2.5-Coder-1.5B-Instruct (the Q4_K_M file dequantized to fp32 on both sides), LoRA
             rank 8 on q_proj and v_proj, batch 1 x 256 (QUILL_MODELS=qwen2.5-coder-1.5b scripts/setup)
Each side runs in its own process (so its memory is its own), one warm-up step then --steps timed
steps on random tokens; which side goes first alternates between workloads and rounds. Printed:
seconds per step (mean over rounds), resident memory once the model and optimizer are loaded, the
peak over the steps, and the ratios PyTorch / Quill.
"""
import argparse, os, re, subprocess, sys
from machine import cpu_features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
MODEL = f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
QWEN = f"{CACHE}/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
# workload: (model file, batch, sequence length)
SHAPES = {"full": (MODEL, 4, 256), "lora": (MODEL, 4, 256), "gpt2": (None, 4, 256), "qwen-lora": (QWEN, 1, 256)}

TORCH_STEP = r'''
import os, sys, time, torch
torch.manual_seed(0)
workload, model_path, steps, B, T = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(int(sys.argv[4]))
def status(key): return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) * 1024
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel
if workload == "gpt2":
    model = GPT2LMHeadModel(GPT2Config(activation_function="gelu_new"))
else:
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(model_path), gguf_file=os.path.basename(model_path),
                                                 dtype=torch.float32)
model.config.use_cache = False
if workload.endswith("lora"):
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
model.train()
for m in model.modules():          # dropout off on both sides
    if isinstance(m, torch.nn.Dropout): m.p = 0.0
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
vocab = model.config.vocab_size
loaded = status("VmRSS")
times = []
for step in range(steps + 1):
    x = torch.randint(0, vocab, (B, T))
    t0 = time.time()
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)
    if step > 0: times.append(time.time() - t0)
print(f"RESULT {sum(times) / len(times):.4f} {loaded} {status('VmHWM')}")
'''


def torch_side(workload, steps, threads):
    """(seconds per step, resident bytes after loading, peak resident bytes)"""
    model, batch, length = SHAPES[workload]
    out = subprocess.run([sys.executable, "-c", TORCH_STEP, workload, str(model), str(steps), str(threads), str(batch), str(length)],
                         check=True, capture_output=True, text=True).stdout
    seconds, loaded, peak = re.search(r"RESULT ([0-9.]+) (\d+) (\d+)", out).groups()
    return float(seconds), int(loaded), int(peak)


def quill_side(binary, workload, steps, threads):
    model, batch, length = SHAPES[workload]
    args = [binary, "train", "bench", "--steps", str(steps), "--batch", str(batch), "--length", str(length), "--threads", str(threads)]
    args += ["-m", model or "gpt2-124m-random"]
    if workload.endswith("lora"):
        args.append("--lora")
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    seconds = float(re.search(r"([0-9.]+) s/step", out).group(1))
    loaded = float(re.search(r"RSS after loading ([0-9.]+) MB", out).group(1)) * 1e6
    peak = float(re.search(r"peak RSS ([0-9.]+) MB", out).group(1)) * 1e6
    return seconds, int(loaded), int(peak)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="full,lora,gpt2")
    a = ap.parse_args()
    print(f"cpu: {cpu_features()}; {a.threads} threads each side", flush=True)
    names = {"full": "SmolLM2-135M full", "lora": "SmolLM2-135M LoRA r8", "gpt2": "GPT-2 124M full (random init)",
             "qwen-lora": "Qwen2.5-1.5B LoRA r8, 1x256"}
    for w, workload in enumerate(a.only.split(",")):
        runs = {"torch": [], "quill": []}
        for r in range(a.rounds):
            sides = [("torch", lambda: torch_side(workload, a.steps, a.threads)),
                     ("quill", lambda: quill_side(a.quill, workload, a.steps, a.threads))]
            for side, measure in (sides if (w + r) % 2 == 0 else sides[::-1]):
                runs[side].append(measure())
        (t_s, t_load, t_peak), (q_s, q_load, q_peak) = [
            (sum(x[0] for x in runs[k]) / len(runs[k]), max(x[1] for x in runs[k]), max(x[2] for x in runs[k])) for k in ("torch", "quill")]
        print(f"{names[workload]:30s} PyTorch {t_s:6.2f} s/step, {t_load / 1e9:4.2f} GB loaded, {t_peak / 1e9:4.2f} GB peak | "
              f"Quill {q_s:6.2f} s/step, {q_load / 1e9:4.2f} GB loaded, {q_peak / 1e9:4.2f} GB peak | "
              f"speed {t_s / q_s:4.2f}x, peak memory {q_peak / t_peak:4.2f} of PyTorch's", flush=True)


if __name__ == "__main__":
    main()
