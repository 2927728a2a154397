#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, and the tiny model the `server` target serves.

    python3 Fuzz/make_seeds.py [OUT]     (OUT: ~/.cache/quill/fuzz by default)

Seeds are small, real inputs: the repository's test fixtures (tiny GGUF and safetensors models,
the chat templates of real models) and cuts of the real files `scripts/setup` caches (GPT-2,
cl100k, bert-base-chinese and Mistral vocabularies, Tang poems in GBK, Song lyrics in Big5, the
Debian reference's HTML). The server model is a one-layer llama with random weights and SmolLM2's
real tokenizer and chat template (read from the cached SmolLM2 GGUF with gguf-py), so requests
reach tokenization, templates, sampling and generation as they do with the real model.
"""
import gzip, json, os, shutil, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.expanduser("~/.cache/quill")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(CACHE, "fuzz")
FIXTURES = os.path.join(ROOT, "Tests", "QuillModelsTests", "Fixtures")
TOKENIZERS = os.path.join(CACHE, "tokenizers")


def seeds(target, items):
    folder = os.path.join(OUT, "seeds", target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i, data in enumerate(items):
        with open(os.path.join(folder, f"seed-{i:03d}"), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    return len(items)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sentencepiece_cut(model, pieces):
    """A SentencePiece .model (a protobuf ModelProto) keeping its first `pieces` pieces (field 1),
    the single-character pieces of alphabetic scripts and "▁" (so merges start from whole
    characters, as in the full model; CJK falls back to bytes) and every other field: a real model
    small enough for thousands of mutations a second."""
    def varint(data, i):
        value = shift = 0
        while True:
            byte = data[i]; i += 1
            value |= (byte & 0x7F) << shift; shift += 7
            if byte < 0x80: return value, i

    def fields(data):
        """(field number, whole field bytes, payload of a length-delimited field) in order."""
        i = 0
        while i < len(data):
            start = i
            key, i = varint(data, i)
            payload = None
            if key & 7 == 2:
                length, i = varint(data, i)
                payload, i = data[i:i + length], i + length
            elif key & 7 == 0: _, i = varint(data, i)
            else: i += 4 if key & 7 == 5 else 8
            yield key >> 3, data[start:i], payload

    out, kept = bytearray(), 0
    for number, whole, payload in fields(model):
        if number == 1:
            text = next((p for n, _, p in fields(payload) if n == 1), b"").decode("utf-8", "replace")
            if kept >= pieces and not (len(text) == 1 and (ord(text) < 0x800 or text == "\u2581")):
                continue
            kept += 1
        out += whole
    return bytes(out)


def safetensors(tensors, metadata=None):
    """A safetensors file from {name: (dtype, shape, bytes)}."""
    header, blob = {}, b""
    if metadata: header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob


# --- model files ---
ggufs = [read(os.path.join(FIXTURES, "bad-models", n)) for n in sorted(os.listdir(os.path.join(FIXTURES, "bad-models")))]
ggufs.append(read(os.path.join(FIXTURES, "tiny-llama3-scaled.gguf")))
counts = {"gguf": seeds("gguf", ggufs)}

small = {
    "a": ("F32", [2, 3], struct.pack("<6f", *range(6))), "b": ("F16", [4], struct.pack("<4e", 1, -2, 0.5, 65504)),
    "c": ("BF16", [2], b"\x80\x3f\x00\xc0"), "d": ("I8", [3], b"\x01\xff\x7f"), "e": ("F32", [0], b""),
}
checkpoints = os.path.join(FIXTURES, "tiny-checkpoints")
counts["safetensors"] = seeds("safetensors", [safetensors(small), safetensors(small, {"format": "pt"}),
                                              read(os.path.join(checkpoints, "llama", "model.safetensors"))])
counts["hf-checkpoint"] = seeds("hf-checkpoint", [
    read(os.path.join(checkpoints, name, "config.json")) + b"\0" + read(os.path.join(checkpoints, name, "model.safetensors"))
    for name in sorted(os.listdir(checkpoints)) if os.path.exists(os.path.join(checkpoints, name, "model.safetensors"))])

# --- tokenizers ---
gpt2_vocab = json.load(open(os.path.join(TOKENIZERS, "gpt2", "vocab.json"), encoding="utf-8"))
gpt2_merges = open(os.path.join(TOKENIZERS, "gpt2", "merges.txt"), encoding="utf-8").read().split("\n")[1:]
few = {t: i for t, i in gpt2_vocab.items() if i < 300}
few_merges = [m for m in gpt2_merges[:2000] if m and all(p in few for p in m.split(" ")) and m.replace(" ", "") in few][:60]
for m in few_merges: few.setdefault(m.replace(" ", ""), len(few))
bert_lines = open(os.path.join(TOKENIZERS, "bert-base-chinese", "vocab.txt"), encoding="utf-8").read().split("\n")
bert_few = bert_lines[:120] + [line for line in bert_lines if len(line) == 1 and "\u4e00" <= line <= "\u9fff"][:200]

byte_level = {
    "version": "1.0", "added_tokens": [{"id": 0, "content": "<|endoftext|>", "special": True, "lstrip": False, "rstrip": False,
                                         "normalized": False, "single_word": False}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": few, "merges": few_merges},
}
word_piece = {
    "version": "1.0", "added_tokens": [{"id": 101, "content": "[CLS]", "special": True}, {"id": 102, "content": "[SEP]", "special": True}],
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                                                {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}}},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
              "vocab": {t: i for i, t in enumerate(bert_few) if t}},
}
pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁", "▁t", "he", "▁the", "▁a", "in", "诗", "▁诗"]
metaspace = {
    "version": "1.0", "added_tokens": [{"id": 1, "content": "<s>", "special": True}, {"id": 2, "content": "</s>", "special": True}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": None,
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
                                                  {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True, "vocab": {p: i for i, p in enumerate(pieces)},
              "merges": [["▁", "t"], ["h", "e"], ["▁t", "he"], ["▁", "a"], ["i", "n"], ["▁", "诗"]]},
}
templates = json.load(open(os.path.join(ROOT, "Tests", "QuillTokenizersTests", "Fixtures", "chat_templates.json"), encoding="utf-8"))["templates"]
config = json.dumps({"bos_token": "<s>", "eos_token": "</s>", "chat_template": templates["SmolLM2"]})
counts["tokenizer-json"] = seeds("tokenizer-json", [json.dumps(t, ensure_ascii=False) for t in (byte_level, word_piece, metaspace)]
                                 + [json.dumps(metaspace, ensure_ascii=False) + "\0" + config])

cl100k = open(os.path.join(TOKENIZERS, "cl100k_base.tiktoken"), encoding="utf-8").read().split("\n")[:400]
counts["vocab-files"] = seeds("vocab-files", [
    b"\0" + json.dumps(few, ensure_ascii=False).encode() + b"\0" + ("#version: 0.2\n" + "\n".join(few_merges)).encode(),
    b"\1" + "\n".join(cl100k).encode(),
    b"\2" + "\n".join(bert_few).encode(),
    b"\3" + sentencepiece_cut(read(os.path.join(TOKENIZERS, "mistral", "tokenizer.model.v1")), 400),
])

texts = ["Hello, world! It's 3.14 o'clock.", "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。", "emoji 🙂👍🏽 and\ttabs\n\nnew lines",
         "<s>[INST] Hello [/INST]", "<|endoftext|> <|im_start|>user", "Ünïcödé ﬁ ｆｕｌｌ　ｗｉｄｔｈ", "   ", "def f(x):\n    return x**2  # 2"]
counts["encode"] = seeds("encode", [bytes([k]) + t.encode() for k in range(4) for t in texts])
counts["jinja"] = seeds("jinja", list(templates.values()) + [
    "{% for m in messages %}{{ m.role | upper }}: {{ m.content | trim }}{% if not loop.last %}\n{% endif %}{% endfor %}",
    "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}{{ messages | length }}",
    "{{ messages[0]['content'][1:3] ~ (1 + 2 * 3) | string }}{% macro m(x) %}[{{ x }}]{% endmacro %}{{ m('a') }}{{ raise_exception('no') if false }}",
])

records = [
    '{"text": "A poem about the sea."}\n{"prompt": "写一首诗", "completion": "春风"}\n',
    '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n',
    '{"id": "p1", "prompt": "Write a haiku", "output": "an old pond"}\n{"id": "p2", "prompt": "写诗", "output": "好"}\n',
    '{"query": "2+2=", "choices": ["3", "4"], "gold": 1}\n',
]
counts["records"] = seeds("records", ["\0" + r for r in records] + ["\1First block.\n\nSecond block, 第二段。\n"])

# The texts `scripts/setup` caches (not scripts/demo's sample corpus, which CI never makes), in the
# encodings the demo gives them: GBK Tang poems and Big5 Song lyrics.
corpus_texts = os.path.join(CACHE, "texts")
html_page = read(os.path.join(corpus_texts, "debian-reference", "ch01.en.html"))[:6000]
tang = read(os.path.join(corpus_texts, "fortunes-zh", "tang300")).decode()[:1500].encode("gb18030")
song = read(os.path.join(corpus_texts, "fortunes-zh", "song100")).decode()[:1500].encode("big5", errors="ignore")
jsonl = b'{"text": "The quick brown fox jumps over the lazy dog again and again."}\n{"text": "\xe6\x98\xa5\xe7\x9c\xa0"}\n'
counts["corpus"] = seeds("corpus", [b"\0" + jsonl, b"\1" + tang, b"\2" + html_page, b"\3" + b'text,source\n"a, quoted\nfield",x\n',
                                    b"\4" + b"text\tsource\nsome text\tx\n", b"\5" + gzip.compress(jsonl), b"\6" + gzip.compress(song),
                                    b"\7" + "# Title\n\nSome *markdown* text.\n".encode()])
counts["text"] = seeds("text", [html_page, tang, song, "Plain UTF-8 text, 中文。".encode("utf-16"), "<p>a &amp; b &#x4e2d; &bogus;</p>".encode()])

chat = {"messages": [{"role": "user", "content": "Write a line about the sea."}], "max_tokens": 4, "seed": 1}
counts["server"] = seeds("server", [bytes([k]) + json.dumps(b).encode() for k, b in [
    (0, {"prompt": "Once upon a time", "max_new_tokens": 4, "do_sample": True, "top_k": 5, "seed": 2, "details": True, "top_n_tokens": 2}),
    (1, {"prompt": "Hello", "max_new_tokens": 3, "stop": ["\n"]}),
    (2, {"prompt": ["One", [1, 2, 3]], "max_tokens": 3, "logprobs": 2, "echo": True}),
    (2, {"prompt": "A", "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}, "logit_bias": {"5": -100}}),
    (3, chat), (3, dict(chat, stream=True, logprobs=True, top_logprobs=2, n=2)),
    (4, {"text": "春眠不觉晓 hello", "add_special_tokens": True}), (5, {"tokens": [1, 2, 3, 49151]}),
]] + [b"\6smollm2", b"\7swagger-ui.css"])
commit = "0123456789abcdef0123456789abcdef01234567"
counts["hub"] = seeds("hub", [
    b"\0" + json.dumps({"id": "org/name", "sha": commit, "siblings": [{"rfilename": "config.json"}, {"rfilename": "sub/model.gguf"},
                                                                      {"rfilename": "../escape"}, {"rfilename": "/abs"}]}).encode(),
    b"\1" + b"X-Repo-Commit: " + commit.encode() + b"\nX-Linked-Etag: \"" + b"ab" * 32 + b"\"\nX-Linked-Size: 1048576\nLocation: https://cdn.example/x?y=1\n",
    b"\1ETag: W/\"" + b"cd" * 20 + b"\"\nContent-Length: 23\n",
    b"\2org/name", b"\2org/name@v1.0/model.Q4_K_M.gguf", b"\2../etc/passwd", b"\2org/name@" + commit.encode()])
def imatrix_gguf():
    import numpy as np, tempfile
    path = os.path.join(tempfile.mkdtemp(), "imatrix.gguf")
    w = gguf.GGUFWriter(path, arch="")
    w.add_type("imatrix"); w.add_array("imatrix.datasets", ["calibration.txt"])
    w.add_uint32("imatrix.chunk_count", 2); w.add_uint32("imatrix.chunk_size", 512)
    for name, columns in (("blk.0.attn_q.weight", 256), ("blk.0.ffn_down.weight", 512)):
        w.add_tensor(name + ".in_sum2", (np.arange(columns, dtype=np.float32) % 7 + 0.5).reshape(1, columns))
        w.add_tensor(name + ".counts", np.full((1, 1), 1024, dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    return read(path)


def imatrix_dat():
    name = b"blk.0.ffn_up.weight"
    body = struct.pack("<i", 1) + struct.pack("<i", len(name)) + name + struct.pack("<ii", 4, 256)
    body += struct.pack("<256f", *[(i % 5) * 0.25 for i in range(256)])
    return body + struct.pack("<ii", 10, 5) + b"wiki2"


import gguf
counts["imatrix"] = seeds("imatrix", [imatrix_gguf(), imatrix_dat()])
counts["review"] = seeds("review", [
    b"\0" + json.dumps({"name": "Ada"}).encode(),
    b"\1" + json.dumps({"token": "TOKEN", "comparison": 1, "verdict": "left", "comment": "better rhythm"}).encode(),
    b"\2" + json.dumps({"name": "Bo 博"}).encode(),
    b"\3" + json.dumps({"name": "s2", "prompts": ["a", {"id": "x", "prompt": "b"}],
                        "systems": [{"name": "a", "outputs": ["1", "2"]}, {"name": "b", "outputs": ["3", "4"], "source": "x"}], "seed": 3}).encode(),
    b"\4TOKEN", b"\5TOKEN"])

# --- the server's model: SmolLM2's tokenizer, a tiny random llama ---
import numpy as np
import gguf

reader = gguf.GGUFReader(os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
def field(name):
    f = reader.fields[name]
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING: return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING: return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0].item()

tokens = field("tokenizer.ggml.tokens")
C, H, FF, V, CTX = 32, 2, 64, len(tokens), 256
rng = np.random.default_rng(7)
path = os.path.join(OUT, "server-model.gguf")
w = gguf.GGUFWriter(path, "llama")
w.add_context_length(CTX); w.add_embedding_length(C); w.add_block_count(1); w.add_feed_forward_length(FF)
w.add_head_count(H); w.add_head_count_kv(H); w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre(field("tokenizer.ggml.pre"))
w.add_token_list(tokens); w.add_token_types(field("tokenizer.ggml.token_type")); w.add_token_merges(field("tokenizer.ggml.merges"))
w.add_bos_token_id(field("tokenizer.ggml.bos_token_id")); w.add_eos_token_id(field("tokenizer.ggml.eos_token_id"))
w.add_chat_template(field("tokenizer.chat_template"))
for name, shape in {"token_embd.weight": (V, C), "output_norm.weight": (C,), "blk.0.attn_norm.weight": (C,), "blk.0.attn_q.weight": (C, C),
                    "blk.0.attn_k.weight": (C, C), "blk.0.attn_v.weight": (C, C), "blk.0.attn_output.weight": (C, C),
                    "blk.0.ffn_norm.weight": (C,), "blk.0.ffn_gate.weight": (FF, C), "blk.0.ffn_up.weight": (FF, C),
                    "blk.0.ffn_down.weight": (C, FF)}.items():
    w.add_tensor(name, (rng.standard_normal(shape) * 0.5).astype(np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print(f"seeds in {OUT}/seeds: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; server model {path} ({os.path.getsize(path) >> 10} KiB)")
