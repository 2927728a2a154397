#!/usr/bin/env python3
"""Chat template fixtures: real templates rendered by Jinja2 the way transformers renders them.

    pip install jinja2 gguf
    python3 Tests/QuillTokenizersTests/Fixtures/chat_templates.py

Templates come from the GGUF files in the cache (SmolLM2, Qwen2, Phi-3, Command-R) and from
llama.cpp's models/templates in the llama-cpp-python sdist (Llama 3.1 and 3.2, Qwen2.5, Gemma 2,
Mistral Nemo, Phi-3.5, DeepSeek-R1, Granite 3.3). Each is rendered for a few conversations (English
and Chinese, with and without a system turn, with and without the generation prompt) with
transformers' settings: trim_blocks, lstrip_blocks, raise_exception, strftime_now (fixed at
2026-11-29 12:00 here), HF's tojson. A template that
refuses a conversation records the exception's message instead.
"""
import datetime, json, os, tarfile
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
SDIST = f"{CACHE}/downloads/llama_cpp_python-0.3.36.tar.gz"

FROM_LLAMA_CPP = ["meta-llama-Llama-3.1-8B-Instruct", "meta-llama-Llama-3.2-3B-Instruct", "Qwen-Qwen2.5-7B-Instruct",
                  "google-gemma-2-2b-it", "mistralai-Mistral-Nemo-Instruct-2407", "microsoft-Phi-3.5-mini-instruct",
                  "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "ibm-granite-granite-3.3-2B-Instruct"]
FROM_GGUF = {"SmolLM2": "models/SmolLM2-135M-Instruct.Q4_1.gguf", "Qwen2": "vocab-tests/ggml-vocab-qwen2.gguf",
             "Phi-3": "vocab-tests/ggml-vocab-phi-3.gguf", "Command-R": "vocab-tests/ggml-vocab-command-r.gguf"}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are a poet who answers briefly."},
     {"role": "user", "content": "写一首关于月亮的诗"},
     {"role": "assistant", "content": "床前明月光，\n疑是地上霜。"},
     {"role": "user", "content": "  Another one, please.  "}],
    [{"role": "user", "content": "What's 2+2?"}, {"role": "assistant", "content": "<think>easy</think>4"},
     {"role": "user", "content": "And 3×3? 🤔"}],
]

def templates():
    out = {}
    with tarfile.open(SDIST) as t:
        for m in t:
            base = os.path.basename(m.name)
            if "/models/templates/" in m.name and base[:-6] in FROM_LLAMA_CPP and base.endswith(".jinja"):
                out[base[:-6]] = t.extractfile(m).read().decode()
    for name, rel in FROM_GGUF.items():
        r = gguf.GGUFReader(f"{CACHE}/{rel}")
        out[name] = r.fields["tokenizer.chat_template"].contents()
    return out

def render(source, messages, add_generation_prompt):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime(2026, 11, 29, 12, 0).strftime(fmt)   # a fixed "now"
    template = env.from_string(source)
    return template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                           bos_token="<s>", eos_token="</s>", date_string="29 Nov 2026")

def main():
    tpls = templates()
    cases = []
    for name in sorted(tpls):
        for i, conversation in enumerate(CONVERSATIONS):
            for gen in (True, False):
                case = {"template": name, "conversation": i, "add_generation_prompt": gen}
                try:
                    case["expected"] = render(tpls[name], conversation, gen)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
    with open(os.path.join(HERE, "chat_templates.json"), "w") as f:
        json.dump({"templates": tpls, "conversations": CONVERSATIONS, "cases": cases}, f, ensure_ascii=False, indent=1)
    print(f"{len(tpls)} templates, {len(cases)} cases, {sum('error' in c for c in cases)} refused by their template")

if __name__ == "__main__":
    main()
