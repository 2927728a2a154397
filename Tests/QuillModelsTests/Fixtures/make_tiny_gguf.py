#!/usr/bin/env python3
"""A GGUF copy of the tiny Llama 3.1-scaled checkpoint, written as llama.cpp's converter writes
Llama files: q/k rows permuted for adjacent-pair RoPE, and Llama 3 rope scaling stored as the
`rope_freqs.weight` tensor of per-frequency divisors (convert_hf_to_gguf.py's LlamaModel), not
as metadata. The test loads it and compares with the same PyTorch logits (expected.json).

    pip install gguf safetensors numpy
    python3 Tests/QuillModelsTests/Fixtures/make_tiny_gguf.py
"""
import json, math, os
import numpy as np
import gguf
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "tiny-checkpoints", "llama3-scaled")

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

def main():
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    t = load_file(os.path.join(SRC, "model.safetensors"))
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(os.path.join(HERE, "tiny-llama3-scaled.gguf"), "llama")
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
    w.add_tensor("rope_freqs.weight", rope_factors(cfg))
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
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    print("tiny-llama3-scaled.gguf written")

if __name__ == "__main__":
    main()
