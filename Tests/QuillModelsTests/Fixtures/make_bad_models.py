#!/usr/bin/env python3
"""Tiny GGUF files for the model loader's error paths (written with gguf-py's GGUFWriter).

    python3 Tests/QuillModelsTests/Fixtures/make_bad_models.py

tiny-llama.gguf: a valid one-layer llama (C=32, 2 heads, FFN 64, vocab 48, F32 weights);
missing-tensor.gguf: the same without blk.0.ffn_up.weight;
wrong-shape.gguf: blk.0.attn_q.weight is [32, 16] instead of [32, 32];
unknown-arch.gguf: general.architecture = "rwkv6".
"""
import os
import numpy as np
import gguf

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad-models")
C, H, FF, V, CTX = 32, 2, 64, 48, 16

def write(name, arch="llama", drop=(), reshape=None):
    rng = np.random.default_rng(1)
    w = gguf.GGUFWriter(os.path.join(HERE, name), arch)
    w.add_context_length(CTX)
    w.add_embedding_length(C)
    w.add_block_count(1)
    w.add_feed_forward_length(FF)
    w.add_head_count(H)
    w.add_head_count_kv(H)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    tokens = [chr(ord("a") + i % 26) * (1 + i // 26) for i in range(V)]
    w.add_token_list(tokens)
    w.add_token_types([1] * V)
    w.add_token_merges([])
    shapes = {  # numpy shape [rows, cols]; GGUF stores it reversed
        "token_embd.weight": (V, C), "output_norm.weight": (C,),
        "blk.0.attn_norm.weight": (C,), "blk.0.attn_q.weight": (C, C), "blk.0.attn_k.weight": (C, C),
        "blk.0.attn_v.weight": (C, C), "blk.0.attn_output.weight": (C, C), "blk.0.ffn_norm.weight": (C,),
        "blk.0.ffn_gate.weight": (FF, C), "blk.0.ffn_up.weight": (FF, C), "blk.0.ffn_down.weight": (C, FF),
    }
    if reshape: shapes[reshape[0]] = reshape[1]
    for tensor, shape in shapes.items():
        if tensor in drop: continue
        w.add_tensor(tensor, (rng.standard_normal(shape) * 0.1).astype(np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

os.makedirs(HERE, exist_ok=True)
write("tiny-llama.gguf")
write("missing-tensor.gguf", drop=("blk.0.ffn_up.weight",))
write("wrong-shape.gguf", reshape=("blk.0.attn_q.weight", (16, C)))
write("unknown-arch.gguf", arch="rwkv6")
print(sorted(os.listdir(HERE)))
