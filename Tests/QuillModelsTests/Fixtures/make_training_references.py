#!/usr/bin/env python3
"""PyTorch references for training: gradients, AdamW steps and LoRA gradients of the tiny checkpoints.

    pip install torch transformers peft safetensors
    python3 Tests/QuillModelsTests/Fixtures/make_training_references.py [NAME ...]   (default: all)

For each tiny checkpoint made by make_tiny_checkpoints.py (GPT-2, Llama, Mistral with its sliding
window of 8, Qwen2 with q/k/v biases, Gemma 3 with its sliding-window layers, and Gemma 3 with a
query scale of its own and final logit soft-capping), in fp32, eval mode (no dropout):
  - the loss of a batch of 2 x 12 tokens against targets with some ignored positions (-100), and
    every parameter's gradient, saved under the Hugging Face names in the Linear layout [out, in]
    (GPT-2's Conv1D weights transposed), in training/NAME/gradients.safetensors;
  - 10 AdamW steps on the same two micro-batches (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only, gradient clipping
    at norm 1.0, cosine schedule with 2 warmup steps down to 10% of lr 1e-2), each step two
    micro-batches whose loss is divided by the step's total target count; the step losses;
  - for Llama, GPT-2 and Gemma 3: PEFT LoRA (rank 4, alpha 8, rsLoRA off, no dropout) on q_proj/v_proj or
    c_attn with B drawn random instead of zero (so A's gradient is not zero), the adapter weights
    (lora.safetensors, and as PEFT saves it: peft-adapter/) and their gradients (lora-gradients.safetensors).
The tokens, targets and numbers go to training/NAME/reference.json.
"""
import json, math, os, sys
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKPOINTS = os.path.join(HERE, "tiny-checkpoints")
OUT = os.path.join(HERE, "training")
B, T, VOCAB = 2, 12, 256
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def batch(g):
    tokens = torch.randint(0, VOCAB, (B, T), generator=g)
    targets = torch.randint(0, VOCAB, (B, T), generator=g)
    targets[0, :3] = -100          # a prompt with no loss
    targets[1, 7] = -100
    return tokens, targets


def loss_sum(model, tokens, targets):
    logits = model(tokens).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-100, reduction="sum")


def ours(name, tensor):
    """A gradient or weight in Quill's layout and name."""
    t = tensor.detach().clone()
    if name.endswith(CONV1D):
        t = t.t()
    if not name.startswith("transformer.") and name.startswith(("wte", "wpe", "h.", "ln_f")):
        name = "transformer." + name
    return name, t.contiguous()


def cosine(step, warmup=2, total=10, floor=0.1):
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


# Checkpoints whose fp32 training PyTorch itself cannot reproduce closely: on the tiny Gemma 3s,
# PyTorch fp32's gradients are 2e-5 (relative) from fp64's and ten AdamW steps drift apart by up
# to 1e-2 in loss (the post-norms rescale small attention and feed-forward outputs). Their
# references are computed in float64 from the same (fp32) weights, and PyTorch fp32's own
# figures are kept beside them, so a test can hold Quill to what fp32 arithmetic allows.
FLOAT64 = ("gemma3", "gemma3-capped")


def load(name, dtype):
    model = AutoModelForCausalLM.from_pretrained(os.path.join(CHECKPOINTS, name), dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    return model.to(dtype)   # fp32 weights, exactly, in either precision


def gradients(model, tokens, targets):
    count = int((targets >= 0).sum())
    loss = loss_sum(model, tokens, targets) / count
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad()
    return loss.item(), grads


def adamw_steps(model, micro):
    """10 AdamW steps of two micro-batches each; the step losses and gradient norms."""
    params = dict(model.named_parameters())
    decay = [p for n, p in params.items() if p.dim() == 2 and "wte" not in n and "wpe" not in n and "embed_tokens" not in n]
    rest = [p for n, p in params.items() if not any(p is d for d in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    losses, norms = [], []
    for step in range(10):
        total = sum(int((y >= 0).sum()) for _, y in micro[step])
        step_loss = 0.0
        for x, y in micro[step]:
            l = loss_sum(model, x, y) / total
            l.backward()
            step_loss += l.item()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)))
        opt.step(); schedule.step(); opt.zero_grad()
        losses.append(step_loss)
    return losses, norms


def worst_relative(got, want):
    return max(((got[n].double() - want[n].double()).abs().max() / want[n].double().abs().max().clamp_min(1e-12)).item() for n in want)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for name in sys.argv[1:] or ["gpt2", "llama", "mistral", "qwen2", "gemma3", "gemma3-capped"]:
        g = torch.Generator().manual_seed(7)
        tokens, targets = batch(g)
        dtype = torch.float64 if name in FLOAT64 else torch.float32
        model = load(name, dtype)
        loss, grads = gradients(model, tokens, targets)
        out = os.path.join(OUT, name)
        os.makedirs(out, exist_ok=True)
        save_file(dict(ours(n, t.float()) for n, t in grads.items()), os.path.join(out, "gradients.safetensors"))

        micro = [[batch(g) for _ in range(2)]] * 10   # the same two micro-batches: the loss must fall
        losses, norms = adamw_steps(model, micro)
        reference = {"tokens": tokens.tolist(), "targets": targets.tolist(), "loss": loss,
                     "precision": "float64" if name in FLOAT64 else "float32",
                     "adamw": {"lr": 1e-2, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1, "clip": 1.0,
                               "warmup": 2, "steps": 10, "min_lr_ratio": 0.1,
                               "batches": [[[x.tolist(), y.tolist()] for x, y in m] for m in micro],
                               "losses": losses, "grad_norms": norms}}
        if name in FLOAT64:   # what PyTorch's own fp32 run gets against these
            fp32 = load(name, torch.float32)
            fp32_loss, fp32_grads = gradients(fp32, tokens, targets)
            fp32_losses, fp32_norms = adamw_steps(fp32, micro)
            reference["pytorch_fp32"] = {"loss": fp32_loss, "worst_gradient_error": worst_relative(fp32_grads, grads),
                                         "losses": fp32_losses, "grad_norms": fp32_norms}
            model = load(name, dtype)   # the LoRA reference starts from the checkpoint again

        if name in ("llama", "gpt2", "gemma3"):
            from peft import LoraConfig, get_peft_model
            base = load(name, torch.float32)
            targets_ = ["c_attn"] if name == "gpt2" else ["q_proj", "v_proj"]
            peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets_,
                                                         fan_in_fan_out=(name == "gpt2")))
            torch.manual_seed(3)
            with torch.no_grad():
                for n, p in peft_model.named_parameters():
                    if "lora_B" in n:
                        p.copy_(0.1 * torch.randn_like(p))
            adapter_dir = os.path.join(out, "peft-adapter")
            peft_model.save_pretrained(adapter_dir)   # as PEFT writes an adapter directory (fp32)
            peft_model.to(dtype)   # the fp32 adapter, exactly, in the reference's precision
            lora_loss = loss_sum(peft_model, tokens, targets) / int((targets >= 0).sum())
            lora_loss.backward()
            weights, lgrads = {}, {}
            for n, p in peft_model.named_parameters():
                if "lora_" in n:
                    key = n.replace(".default", "")
                    weights[key] = p.detach().float().contiguous()
                    lgrads[key] = p.grad.detach().float().contiguous()
            save_file(weights, os.path.join(out, "lora.safetensors"))
            os.remove(os.path.join(adapter_dir, "README.md"))   # the model card: not needed, and it names this machine's paths
            with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
                adapter_config = json.load(f)
            adapter_config["base_model_name_or_path"] = f"tiny-checkpoints/{name}"
            with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
                json.dump(adapter_config, f, indent=2, sort_keys=True)
            save_file(lgrads, os.path.join(out, "lora-gradients.safetensors"))
            reference["lora"] = {"rank": 4, "alpha": 8, "targets": targets_, "loss": lora_loss.item()}

        with open(os.path.join(out, "reference.json"), "w") as f:
            json.dump(reference, f)
        print(name, "loss", round(loss, 5), "steps", [round(l, 4) for l in losses],
              reference.get("pytorch_fp32", {}).get("worst_gradient_error", ""))


if __name__ == "__main__":
    main()
