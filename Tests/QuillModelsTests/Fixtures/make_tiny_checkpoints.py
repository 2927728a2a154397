#!/usr/bin/env python3
"""Tiny random Hugging Face checkpoints and their PyTorch logits, for the architecture tests.

    pip install torch transformers
    python3 Tests/QuillModelsTests/Fixtures/make_tiny_checkpoints.py [NAME ...]

For GPT-2, Llama (plus variants with Llama 3.1, YaRN and dynamic NTK rope scaling), Mistral (sliding
window 8), Qwen2 (q/k/v biases) and Gemma 3 (6 layers: five with a sliding window of 8 and their
own RoPE base, one global with linear rope scaling; q/k norms, post-norms, GeGLU, √C embedding
scale; "gemma3-capped" adds a query_pre_attn_scalar other than head_dim and final logit
soft-capping): a 2-layer fp32 model with random weights saved with
save_pretrained (the Mistral one in shards, to exercise the safetensors index), and the logits
transformers computes for three prompts of 5, 11 and 20 tokens (tiny-checkpoints/NAME/expected.json).
Dynamic NTK scaling depends on the sequence length of each forward call, so for it the logits of
transformers' own KV-cache path (two tokens, then one at a time) are kept too ("cached_logits").
Names given on the command line are remade alone.
"""
import json, os, shutil, sys
import torch
from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny-checkpoints")
COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=256, max_position_embeddings=64, rms_norm_eps=1e-5,
              tie_word_embeddings=False)
MODELS = {
    "llama": (LlamaConfig, LlamaForCausalLM, dict(rope_theta=10000.0)),
    "llama3-scaled": (LlamaConfig, LlamaForCausalLM, dict(rope_theta=500000.0, tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 16})),
    "llama-yarn": (LlamaConfig, LlamaForCausalLM, dict(rope_theta=10000.0,
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16})),
    "llama-dynamic": (LlamaConfig, LlamaForCausalLM, dict(rope_theta=10000.0, max_position_embeddings=16,
        rope_scaling={"rope_type": "dynamic", "factor": 2.0})),
    "mistral": (MistralConfig, MistralForCausalLM, dict(sliding_window=8, rope_theta=10000.0)),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, dict(rope_theta=1000000.0, use_sliding_window=False)),
}
GEMMA = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=6, head_dim=16, sliding_window=8,
             query_pre_attn_scalar=16, hidden_activation="gelu_pytorch_tanh",
             rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0},
                              "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
MODELS["gemma3"] = (Gemma3TextConfig, Gemma3ForCausalLM, GEMMA)
MODELS["gemma3-capped"] = (Gemma3TextConfig, Gemma3ForCausalLM, {**GEMMA, "query_pre_attn_scalar": 24,
                                                                 "final_logit_softcapping": 3.0})

def main():
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 256, (n,), generator=g).tolist() for n in (5, 11, 20)]
    models = dict(MODELS)
    models["gpt2"] = (GPT2Config, GPT2LMHeadModel, None)
    for name, (config_class, model_class, extra) in models.items():
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        torch.manual_seed(1)
        if extra is None:
            config = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=256,
                                activation_function="gelu_new", layer_norm_epsilon=1e-5)
        else:
            config = config_class(**{**COMMON, **extra})
        config._attn_implementation = "eager"
        model = model_class(config).eval()
        with torch.no_grad():   # make the norms non-trivial too
            for n, p in model.named_parameters():
                if "norm" in n or ".ln_" in n:
                    p.copy_((1 if n.endswith("weight") else 0) + 0.1 * torch.randn_like(p))
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        model.save_pretrained(out, safe_serialization=True, max_shard_size="200KB" if name == "mistral" else "50MB")
        expected = []
        with torch.no_grad():
            for ids in prompts:
                logits = model(torch.tensor([ids])).logits[0]
                expected.append({"tokens": ids, "logits": logits.tolist()})
                if (extra or {}).get("rope_scaling", {}).get("rope_type") == "dynamic":
                    step = model(torch.tensor([ids[:2]]), use_cache=True)
                    cached, past = [step.logits[0, 0], step.logits[0, 1]], step.past_key_values
                    for t in ids[2:]:
                        step = model(torch.tensor([[t]]), past_key_values=past, use_cache=True)
                        cached.append(step.logits[0, -1]); past = step.past_key_values
                    expected[-1]["cached_logits"] = torch.stack(cached).tolist()
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump(expected, f)
        print(name, sorted(os.listdir(out)))

if __name__ == "__main__":
    main()
