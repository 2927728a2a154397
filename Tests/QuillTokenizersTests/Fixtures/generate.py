#!/usr/bin/env python3
"""Make the tokenizer parity fixtures with the reference implementation, Hugging Face `tokenizers`.

    pip install tokenizers==0.23.3 transformers sentencepiece protobuf gguf
    scripts/setup                                   # fetches the source files into ~/.cache/quill
    swift build -c release && .build/release/quill tokenize train \
        Tests/QuillTokenizersTests/Fixtures/corpus.jsonl --vocab-size 2000 --special "<|endoftext|>" \
        --special "<|im_start|>" --special "<|im_end|>" -o Tests/QuillTokenizersTests/Fixtures/trained.tokenizer.json
    python3 Tests/QuillTokenizersTests/Fixtures/generate.py

Writes, next to this script:
  corpus.jsonl            3,000+ test strings from real texts (one JSON string per line)
  <name>.ids              for each tokenizer: the ids HF gives each string (add_special_tokens=True)
  <name>.decoded.jsonl    HF's decode of those ids (skip_special_tokens=False)
  bert-base-chinese.tokenizer.json   an HF-saved file for the JSON loader
  trained.tokenizer.json             written by `quill tokenize train` (see above); HF's own
                                     BpeTrainer is run on the same text and must agree with it
  mistral-first.jsonl                HF's ids for texts with special tokens under Mistral's
                                     legacy=False pipeline (Metaspace, prepend_scheme "first")
  hf-bpetrainer.tokenizer.json       HF BpeTrainer's vocabulary and merges for that text: the
                                     reference Quill's trainer is tested against

The reference pipelines mirror the models' published tokenizer.json files; the source files are
read from the same cached assets the Swift tests load (GGUF, vocab.json+merges.txt, SentencePiece
model, vocab.txt), so both sides start from identical vocabularies.
"""
import gzip, json, os, random, re, subprocess, sys, tempfile
from tokenizers import Tokenizer, AddedToken, models, normalizers, pre_tokenizers, decoders, processors, Regex

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
rng = random.Random(20261129)

# ---------------------------------------------------------------------------------------------
# corpus
def shakespeare_lines(n):
    d = f"{CACHE}/texts/shakespeare"
    lines = []
    for name in sorted(os.listdir(d)):
        with open(f"{d}/{name}", encoding="utf-8", errors="replace") as f:
            lines += [l.rstrip("\n") for l in f if l.strip()]
    return rng.sample(lines, n)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
def fortunes_lines(n):
    lines = []
    for name in ("tang300", "song100", "chinese"):
        with open(f"{CACHE}/texts/fortunes-zh/{name}", encoding="utf-8", errors="replace") as f:
            lines += [ANSI.sub("", l).rstrip("\n") for l in f if l.strip() and l.strip() != "%"]
    return rng.sample(lines, n)

def debian_reference_zh():
    """Every line with Chinese in the Debian Reference (zh-cn), fetched with apt-get if needed."""
    path = "/usr/share/debian-reference/debian-reference.zh-cn.txt.gz"
    if not os.path.exists(path):
        tmp = tempfile.mkdtemp()
        subprocess.run(["apt-get", "download", "debian-reference-zh-cn"], cwd=tmp, check=True, capture_output=True)
        debf = [f for f in os.listdir(tmp) if f.endswith(".deb")][0]
        subprocess.run(["dpkg", "-x", debf, "x"], cwd=tmp, check=True)
        path = f"{tmp}/x{path}"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [l for l in f if re.search(r"[\u4e00-\u9fff]", l)]

def modern_chinese_lines(n):
    return rng.sample([l.rstrip("\n") for l in debian_reference_zh()], n)

def code_lines(n):
    import sysconfig
    lib = sysconfig.get_paths()["stdlib"]
    lines = []
    for name in ("json/decoder.py", "argparse.py", "textwrap.py", "string.py", "heapq.py"):
        with open(f"{lib}/{name}", encoding="utf-8") as f:
            lines += [l.rstrip("\n") for l in f if l.strip()]
    picked = rng.sample(lines, n)
    out = []
    for i, l in enumerate(picked):
        if i % 3 == 0:   # tabs for indentation
            l = re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), l)
        if i % 4 == 1:   # a few lines joined with CRLF, as Windows files have them
            l = l + "\r\n" + picked[(i + 1) % n] + "\r\n"
        if i % 7 == 2:
            l = l + "\n\n\t\n"
        out.append(l)
    return out

EMOJI = ["👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "❤", "👍🏽", "🇨🇳", "🇺🇸", "1️⃣", "🧑🏿‍💻", "👩‍❤️‍💋‍👨", "😀", "🙏🏻",
         "☺️", "✌🏾", "🤷‍♀️", "🐈‍⬛", "©️", "🫠", "🥲", "🀄", "⚡", "🌏"]
WORDS = ["hello", "world", "你好", "世界", "the", "cat", "喜欢", "family", "love", "ok"]
def emoji_lines(n):
    out = []
    for i in range(n):
        parts = [rng.choice(EMOJI) if rng.random() < 0.5 else rng.choice(WORDS) for _ in range(rng.randint(1, 7))]
        sep = rng.choice([" ", "", "  ", "，"])
        out.append(sep.join(parts))
    return out

# Article 1 of the Universal Declaration of Human Rights and other well-known public sentences.
SCRIPTS = [
    "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ",
    "ต่างมีเหตุผลและมโนธรรม และควรปฏิบัติต่อกันด้วยเจตนารมณ์แห่งภราดรภาพ",
    "สวัสดีครับ วันนี้อากาศดีมาก",
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।",
    "उन्हें बुद्धि और अन्तरात्मा की देन प्राप्त है और परस्पर उन्हें भाईचारे के भाव से बर्ताव करना चाहिए।",
    "नमस्ते, आप कैसे हैं?",
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
    "وقد وهبوا عقلاً وضميرًا وعليهم أن يعامل بعضهم بعضًا بروح الإخاء.",
    "مرحبا بالعالم",
    "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "Ὁ βίος βραχύς, ἡ δὲ τέχνη μακρή.",
    "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。",
    "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",
    "Ça va? Élève, naïve, coöperate, façade — «guillemets» ‘quotes’ “double”",
    "e\u0301 (decomposed é), A\u030a, Å, ﬁ ligature, ｆｕｌｌｗｉｄｔｈ, ①②③, Ⅻ, ㍿",
]
def script_lines(n):
    out = []
    for i in range(n):
        k = rng.randint(1, 3)
        out.append(rng.choice([" ", "", "\n"]).join(rng.choice(SCRIPTS) for _ in range(k)))
    return out

def number_lines(n):
    out = []
    for i in range(n):
        kind = i % 8
        if kind == 0: out.append(str(rng.randint(0, 10**rng.randint(1, 15))))
        elif kind == 1: out.append(f"{rng.random() * 10**rng.randint(0, 6):.{rng.randint(1, 6)}f}")
        elif kind == 2: out.append(f"{rng.randint(1, 10**9):,}")
        elif kind == 3: out.append("".join(rng.choice("٠١٢٣٤٥٦٧٨٩") for _ in range(rng.randint(1, 8))))
        elif kind == 4: out.append("".join(rng.choice("०१२३४५६७८९") for _ in range(rng.randint(1, 8))))
        elif kind == 5: out.append("".join(rng.choice("０１２３４５６７８９") for _ in range(rng.randint(1, 8))))
        elif kind == 6: out.append(f"共{rng.randint(1, 99999)}人，占{rng.randint(1, 100)}%，于{rng.randint(1900, 2030)}年")
        else: out.append(f"  {rng.randint(1, 999)}   {rng.randint(1, 99999)}  x{rng.randint(1, 9)} 3rd 1st 2nd v1.2.3 0x{rng.randint(0, 2**32):08X}")
    return out

SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", " \n ", "\n\n\n", "    \t"]
def whitespace_lines(n):
    out = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(rng.choice(SPACES))
            parts.append(rng.choice(WORDS + ["123", "4", ".", "!?", "'s", "'LL", "don't", "I'm"]))
        if rng.random() < 0.3: parts.append(rng.choice(SPACES))
        out.append("".join(parts))
    return out

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "[CLS]", "[SEP]", "<unk>", "[MASK]", "<pad>"]
def special_lines(n):
    out = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(1, 5)):
            parts.append(rng.choice(SPECIAL) if rng.random() < 0.5 else rng.choice(WORDS + [" ", "\n", " user\n", "你好！"]))
        out.append("".join(parts))
    out[0] = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n"
    return out

def build_corpus():
    parts = [shakespeare_lines(900), fortunes_lines(400), modern_chinese_lines(300), code_lines(450),
             emoji_lines(200), script_lines(300), number_lines(200), whitespace_lines(200), special_lines(100)]
    corpus = [l for p in parts for l in p]
    corpus += ["", " ", "\n", "a", "Hello world", " Hello world", "Hello World", "  leading", "trailing  ", "'s 's 'S ſ 'ſ"]
    return corpus

# ---------------------------------------------------------------------------------------------
# reference tokenizers
def gguf_vocab(path):
    import gguf
    r = gguf.GGUFReader(path)
    f = {k: v.contents() for k, v in r.fields.items() if k.startswith("tokenizer.")}
    return f

def byte_level_bpe(tokens, merges, types, pre, normalizer=None):
    vocab = {t: i for i, t in enumerate(tokens)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], ignore_merges=False))
    if normalizer: tk.normalizer = normalizer
    tk.pre_tokenizer = pre
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    return tk

def smollm2():
    f = gguf_vocab(f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return byte_level_bpe(f["tokenizer.ggml.tokens"], f["tokenizer.ggml.merges"], f["tokenizer.ggml.token_type"], pre)

QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
def qwen2():
    f = gguf_vocab(f"{CACHE}/vocab-tests/ggml-vocab-qwen2.gguf")
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), behavior="isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return byte_level_bpe(f["tokenizer.ggml.tokens"], f["tokenizer.ggml.merges"], f["tokenizer.ggml.token_type"], pre,
                          normalizer=normalizers.NFC())

def gpt2():
    tk = Tokenizer(models.BPE.from_file(f"{CACHE}/tokenizers/gpt2/vocab.json", f"{CACHE}/tokenizers/gpt2/merges.txt"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    tk.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tk

def mistral():
    # Merges as Hugging Face's LlamaConverter derives them from a SentencePiece BPE model (the way
    # Mistral's published tokenizer.json was made): every split of a piece into two pieces, ordered
    # by the piece's score, best first (stable, so ties keep piece order).
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=f"{CACHE}/tokenizers/mistral/tokenizer.model.v1")
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, index in vocab.items():
        score = sp.get_score(index)
        local = [(piece[:k], piece[k:], score) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges = [(l, r) for l, r, _ in sorted(merges, key=lambda m: m[2], reverse=True)]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(content=" ", left=1, right=0)])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tk, sp

def mistral_first():
    """Mistral's tokenizer as HF's LlamaConverter writes it with legacy=False (the tokenizer.json of
    later Mistral and Llama releases): no normalizer, Metaspace with prepend_scheme "first", so the
    dummy prefix goes only at the start of the input, not after a special token written in it."""
    tk, _ = mistral()
    tk.normalizer = None
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    texts = ["<s>[INST] Hello [/INST]", "<unk> token", "Hello world", " leading space", "<s> spaced after", "a</s>b <s>c",
             "[INST] 你好，世界 [/INST]</s>", "<s><s>x", "  two spaces", "end with special</s>"]
    with open(f"{HERE}/mistral-first.jsonl", "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t, "ids": tk.encode(t, add_special_tokens=False).ids}, ensure_ascii=False) + "\n")


def bert_chinese():
    from tokenizers.implementations import BertWordPieceTokenizer
    tk = BertWordPieceTokenizer(f"{CACHE}/tokenizers/bert-base-chinese/vocab.txt", lowercase=False)
    return tk._tokenizer

# ---------------------------------------------------------------------------------------------
def write_expected(name, tk, corpus):
    encs = tk.encode_batch(corpus, add_special_tokens=True)
    with open(f"{HERE}/{name}.ids", "w") as f:
        for e in encs: f.write(" ".join(map(str, e.ids)) + "\n")
    with open(f"{HERE}/{name}.decoded.jsonl", "w") as f:
        for e in encs: f.write(json.dumps(tk.decode(e.ids, skip_special_tokens=False), ensure_ascii=False) + "\n")
    print(f"{name}: {sum(len(e.ids) for e in encs)} ids")

def cl100k_ids(corpus):
    """cl100k_base from its rank file, encoded by tiktoken itself (the original implementation)."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    ranks = load_tiktoken_bpe(f"{CACHE}/tokenizers/cl100k_base.tiktoken")
    special = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
               "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
    enc = tiktoken.Encoding("cl100k_base", pat_str=r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
                            mergeable_ranks=ranks, special_tokens=special)
    with open(f"{HERE}/cl100k.ids", "w") as f:
        for line in corpus:
            f.write(" ".join(map(str, enc.encode(line, allowed_special="all"))) + "\n")
    print("cl100k: written with tiktoken")

def hf_bpe_trainer(corpus):
    """HF's own BpeTrainer on the corpus, as `quill tokenize train --vocab-size 2000` is run above;
    saved as hf-bpetrainer.tokenizer.json, the reference the Swift trainer's test compares with."""
    from tokenizers import trainers
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.train_from_iterator(corpus, trainer=trainers.BpeTrainer(
        vocab_size=2000, min_frequency=2, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    hf.save(f"{HERE}/hf-bpetrainer.tokenizer.json")
    return hf


def main():
    corpus = build_corpus()
    with open(f"{HERE}/corpus.jsonl", "w") as f:
        for line in corpus: f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"corpus: {len(corpus)} strings")
    write_expected("smollm2", smollm2(), corpus)
    write_expected("gpt2", gpt2(), corpus)
    write_expected("qwen2", qwen2(), corpus)
    tk, sp = mistral()
    write_expected("mistral", tk, corpus)
    special = ("<s>", "</s>", "<unk>")
    plain = [l for l in corpus if not any(t in l for t in special)]
    agree = sum(tk.encode(l, add_special_tokens=False).ids == sp.encode(l) for l in plain)
    print(f"mistral: HF tokenizers agrees with SentencePiece itself on {agree}/{len(plain)} lines without special tokens")
    mistral_first()
    bert = bert_chinese()
    bert.save(f"{HERE}/bert-base-chinese.tokenizer.json")
    write_expected("bert-base-chinese", bert, corpus)
    cl100k_ids(corpus)
    trained = f"{HERE}/trained.tokenizer.json"
    if os.path.exists(trained):   # made by `quill tokenize train`, see the docstring
        ours = Tokenizer.from_file(trained)
        write_expected("trained", ours, corpus)
        hf = hf_bpe_trainer(corpus)
        a, b = json.loads(hf.to_str())["model"], json.loads(ours.to_str())["model"]
        same = a["vocab"] == b["vocab"] and [list(m) for m in a["merges"]] == [list(m) for m in b["merges"]]
        print(f"trained: HF BpeTrainer on the same corpus gives {'the same' if same else 'a DIFFERENT'} vocabulary and merges")
        if not same: sys.exit(1)

if __name__ == "__main__":
    main()
