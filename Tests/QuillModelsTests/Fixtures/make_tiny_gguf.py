#!/usr/bin/env python3
"""GGUF copies of tiny checkpoints, written as llama.cpp's converter (convert_hf_to_gguf.py)
writes them; the tests load each and compare with the checkpoint's PyTorch logits (expected.json):

- tiny-llama3-scaled.gguf: q/k rows permuted for adjacent-pair RoPE, and Llama 3 rope scaling
  stored as the `rope_freqs.weight` tensor of per-frequency divisors, not as metadata;
- tiny-llama-yarn.gguf: YaRN as metadata (`llama.rope.scaling.type` = yarn, factor, original
  context length);
- tiny-gemma3.gguf: architecture gemma3 as llama.cpp's Gemma3Model writes it: every norm weight
  plus 1 (Gemma's RMSNorm multiplies by 1 + w), q/k rows unpermuted (NeoX rotation), the sliding
  window in metadata and the layer pattern and local RoPE base left to llama.cpp's defaults (every
  sixth layer global, 10,000), the global layers' linear scaling as metadata;
- tiny-gpt2.gguf: architecture gpt2, Conv1D weights transposed to [out, in], `output.weight` a
  copy of the token embedding.

    pip install gguf safetensors numpy
    python3 Tests/QuillModelsTests/Fixtures/make_tiny_gguf.py
"""
import json, math, os
import numpy as np
import gguf
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKPOINTS = os.path.join(HERE, "tiny-checkpoints")

def permute(w, heads):   # llama.cpp's LlamaModel.permute: rotate-half rows -> adjacent pairs
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

def rope_factors(cfg):   # per-frequency divisors for `llama3` scaling
    rp = cfg["rope_parameters"]
    base, dim = rp["rope_theta"], cfg["head_dim"]
    factor, low, high, old = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"], rp["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for freq in 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim)):
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen: out.append(1)
        elif wavelen > low_wavelen: out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)

def load(name):
    src = os.path.join(CHECKPOINTS, name)
    return json.load(open(os.path.join(src, "config.json"))), load_file(os.path.join(src, "model.safetensors"))

def write(w):
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

def llama(name, scaling):
    cfg, t = load(name)
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(os.path.join(HERE, f"tiny-{name}.gguf"), "llama")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_tensor("token_embd.weight", t["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", t["model.norm.weight"])
    if "lm_head.weight" in t and not cfg.get("tie_word_embeddings"):
        w.add_tensor("output.weight", t["lm_head.weight"])
    scaling(w, cfg)
    for l in range(cfg["num_hidden_layers"]):
        p, q = f"model.layers.{l}.", f"blk.{l}."
        w.add_tensor(q + "attn_norm.weight", t[p + "input_layernorm.weight"])
        w.add_tensor(q + "attn_q.weight", permute(t[p + "self_attn.q_proj.weight"], heads))
        w.add_tensor(q + "attn_k.weight", permute(t[p + "self_attn.k_proj.weight"], kv))
        w.add_tensor(q + "attn_v.weight", t[p + "self_attn.v_proj.weight"])
        w.add_tensor(q + "attn_output.weight", t[p + "self_attn.o_proj.weight"])
        w.add_tensor(q + "ffn_norm.weight", t[p + "post_attention_layernorm.weight"])
        w.add_tensor(q + "ffn_gate.weight", t[p + "mlp.gate_proj.weight"])
        w.add_tensor(q + "ffn_up.weight", t[p + "mlp.up_proj.weight"])
        w.add_tensor(q + "ffn_down.weight", t[p + "mlp.down_proj.weight"])
    write(w)

def llama3_scaling(w, cfg):
    w.add_tensor("rope_freqs.weight", rope_factors(cfg))

def yarn_scaling(w, cfg):
    rp = cfg["rope_parameters"]
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(rp["factor"])
    w.add_rope_scaling_orig_ctx_len(rp["original_max_position_embeddings"])

def gpt2():
    cfg, t = load("gpt2")
    w = gguf.GGUFWriter(os.path.join(HERE, "tiny-gpt2.gguf"), "gpt2")
    w.add_block_count(cfg["n_layer"])
    w.add_context_length(cfg["n_positions"])
    w.add_embedding_length(cfg["n_embd"])
    w.add_feed_forward_length(4 * cfg["n_embd"])
    w.add_head_count(cfg["n_head"])
    w.add_layer_norm_eps(cfg["layer_norm_epsilon"])
    names = {"wte": "token_embd", "wpe": "position_embd", "ln_f": "output_norm", "ln_1": "attn_norm",
             "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm",
             "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}
    for key, value in t.items():
        name = key.removeprefix("transformer.")
        if name.endswith((".attn.bias", ".attn.masked_bias")) or name == "lm_head.weight":
            continue
        if name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            value = value.T.copy()   # Conv1D [in, out] -> [out, in]
        parts = name.split(".")
        if parts[0] == "h":
            stem = ".".join(parts[2:-1])
            out = f"blk.{parts[1]}.{names[stem]}.{parts[-1]}"
        else:
            out = f"{names[parts[0]]}.{parts[-1]}"
        w.add_tensor(out, value)
        if out == "token_embd.weight":
            w.add_tensor("output.weight", value)
    write(w)

def gemma3():
    cfg, t = load("gemma3")
    w = gguf.GGUFWriter(os.path.join(HERE, "tiny-gemma3.gguf"), "gemma3")
    full = cfg["rope_parameters"]["full_attention"]
    assert cfg["query_pre_attn_scalar"] == cfg["head_dim"] and cfg["layer_types"][5] == "full_attention"
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(full["rope_theta"])
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(full["factor"])
    w.add_sliding_window(cfg["sliding_window"])
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "post_attention_norm",
             "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    def shifted(name):
        return t[name] + 1 if name.endswith("norm.weight") else t[name]
    w.add_tensor("token_embd.weight", t["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", shifted("model.norm.weight"))
    if "lm_head.weight" in t and not cfg.get("tie_word_embeddings"):
        w.add_tensor("output.weight", t["lm_head.weight"])
    for l in range(cfg["num_hidden_layers"]):
        for hf, ours in names.items():
            w.add_tensor(f"blk.{l}.{ours}.weight", shifted(f"model.layers.{l}.{hf}.weight"))
    write(w)

def main():
    llama("llama3-scaled", llama3_scaling)
    llama("llama-yarn", yarn_scaling)
    gpt2()
    gemma3()
    print("tiny-llama3-scaled.gguf, tiny-llama-yarn.gguf, tiny-gpt2.gguf, tiny-gemma3.gguf written")

if __name__ == "__main__":
    main()
