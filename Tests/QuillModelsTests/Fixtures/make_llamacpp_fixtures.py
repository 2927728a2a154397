#!/usr/bin/env python3
"""Reference logits and greedy continuations for SmolLM2 from llama.cpp (llama-cpp-python).

    pip install llama-cpp-python==0.3.36     # builds llama.cpp from its sdist
    python3 Tests/QuillModelsTests/Fixtures/make_llamacpp_fixtures.py

Writes llamacpp.json with two references: llama.cpp running the Q4_1 file as it is (Q4_1
weights times Q8_1-quantized activations), and llama.cpp running an F32 copy that its own
llama_model_quantize makes from the same file (the dequantized weights in fp32 math). For an
English and a Chinese passage: the token ids (llama.cpp's tokenizer) and each position's 16
highest logits; and, from the F32 copy, greedy 32-token continuations of a few prompts with the
gap between the two best logits at each step (a near-tie is where correct implementations may part).
"""
import json, os
import numpy as np
from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
MODEL = f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf"

PASSAGES = {
    "english": ("Shall I compare thee to a summer's day? Thou art more lovely and more temperate: "
                "Rough winds do shake the darling buds of May, And summer's lease hath all too short a date; "
                "Sometime too hot the eye of heaven shines, And often is his gold complexion dimm'd; "
                "And every fair from fair sometime declines, By chance or nature's changing course untrimm'd."),
    "chinese": ("床前明月光，疑是地上霜。举头望明月，低头思故乡。春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"
                "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。子曰：学而时习之，不亦说乎？有朋自远方来，不亦乐乎？"),
}
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "<|im_start|>user\nWhat is the tallest mountain in the world?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\n用一句话介绍长城。<|im_end|>\n<|im_start|>assistant\n",
    "中国的首都是",
]

def f32_copy():
    import ctypes, tempfile, llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = 0                 # LLAMA_FTYPE_ALL_F32
    params.allow_requantize = True
    path = os.path.join(tempfile.mkdtemp(), "smollm2-f32.gguf")
    assert llama_cpp.llama_model_quantize(MODEL.encode(), path.encode(), ctypes.byref(params)) == 0
    return path

def passages(llm):
    result = {}
    for name, text in PASSAGES.items():
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens)
        scores = np.array(llm.scores[: len(tokens)], dtype=np.float32)
        top = np.argsort(-scores, axis=1)[:, :16]
        result[name] = {
            "tokens": tokens,
            "top_ids": top.tolist(),
            "top_logits": [[float(scores[i, j]) for j in row] for i, row in enumerate(top)],
        }
        print(f"{name}: {len(tokens)} positions")
    return result

def main():
    quantized = Llama(model_path=MODEL, n_ctx=512, n_threads=2, logits_all=True, verbose=False, seed=0)
    out = {"model": os.path.basename(MODEL), "q4_1": passages(quantized), "greedy": []}
    llm = Llama(model_path=f32_copy(), n_ctx=512, n_threads=2, logits_all=True, verbose=False, seed=0)
    out["f32"] = passages(llm)
    for prompt in PROMPTS:
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens)
        generated, gaps = [], []
        for _ in range(32):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            order = np.argsort(-logits)
            nxt = int(order[0])
            gaps.append(float(logits[order[0]] - logits[order[1]]))
            generated.append(nxt)
            if nxt == 2:
                break
            llm.eval([nxt])
        out["greedy"].append({"prompt": prompt, "prompt_tokens": tokens, "generated": generated, "top2_gap": gaps,
                              "text": llm.detokenize(generated).decode("utf-8", "replace")})
        print(repr(prompt[:30]), "->", repr(out["greedy"][-1]["text"][:60]))
    with open(os.path.join(HERE, "llamacpp.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False)

if __name__ == "__main__":
    main()
