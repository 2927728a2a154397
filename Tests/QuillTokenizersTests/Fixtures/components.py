#!/usr/bin/env python3
"""Pipelines that exercise every tokenizer.json component Quill reads, made and run by HF `tokenizers`.

    python3 Tests/QuillTokenizersTests/Fixtures/components.py

For each pipeline below, HF trains a small vocabulary on the golden corpus, saves the
tokenizer.json (components/NAME.tokenizer.json), and records for 250 corpus lines the ids, the
offsets (as Unicode scalar offsets) and the decoded text (components/NAME.expected.jsonl).
HF's WordPiece trainer and its BPE trainer with affixes break count ties in hash order, so a rerun
may pick a slightly different vocabulary; each saved tokenizer.json and its expectations still agree.
"""
import json, os
from tokenizers import Tokenizer, AddedToken, Regex, models, normalizers, pre_tokenizers, processors, decoders, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "components")
corpus = [json.loads(l) for l in open(os.path.join(HERE, "corpus.jsonl"), encoding="utf-8")]
sample = corpus[::12][:250] + ["<mask> hello <mask>world", "  <SEP>  x", "a<cls>b", "Hello <SEP>", "ok<mask>"]

def bpe_trainer(n=800, **kw):
    return trainers.BpeTrainer(vocab_size=n, min_frequency=2, show_progress=False, **kw)

def pipelines():
    # 1. SentencePiece style: NFKC + lowercase, Metaspace(first, split), byte fallback, Metaspace decoder
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    t.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first")])
    alphabet = [f"<0x{i:02X}>" for i in range(256)]
    t.train_from_iterator(corpus, bpe_trainer(1200, special_tokens=["<unk>", "<s>", "</s>"] + alphabet))
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                     special_tokens=[("<s>", 1), ("</s>", 2)])
    yield "metaspace", t

    # 2. Word-level BPE with affixes: NFD + StripAccents, Whitespace, "##" prefix and "</w>" suffix
    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Strip()])
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.decoder = decoders.BPEDecoder(suffix="</w>")
    t.train_from_iterator(corpus, bpe_trainer(1500, special_tokens=["[UNK]"], continuing_subword_prefix="##",
                                               end_of_word_suffix="</w>"))
    yield "affixes", t

    # 3. WordPiece: BertNormalizer with accent stripping, WhitespaceSplit + Punctuation(contiguous)
    #    + Digits(groups), RoBERTa-style post-processor, WordPiece decoder, lstrip/rstrip/single_word tokens
    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                               pre_tokenizers.Punctuation(behavior="contiguous"),
                                               pre_tokenizers.Digits(individual_digits=False)])
    t.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    t.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=1500, special_tokens=["[UNK]", "<cls>", "<SEP>"],
                                                            show_progress=False))
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True),
                          AddedToken("<SEP>", lstrip=True, rstrip=True, special=True)])
    t.add_tokens([AddedToken("world", single_word=True, normalized=True)])
    t.post_processor = processors.RobertaProcessing(("<SEP>", t.token_to_id("<SEP>")), ("<cls>", t.token_to_id("<cls>")))
    yield "wordpiece", t

    # 4. Byte-level with a custom Split (merged_with_previous, inverted Split), Replace by regex,
    #    Prepend, BertPreTokenizer-free; Sequence decoder with Strip and Replace; BertProcessing
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s{2,}"), " "), normalizers.NFC(),
                                         normalizers.Prepend("^")])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[,.;:!?，。]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\p{Han}+|\d+"), behavior="isolated", invert=False),
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Replace("^", ""), decoders.Strip(" ", 1, 0)])
    t.train_from_iterator(corpus, bpe_trainer(1000, special_tokens=["[CLS]", "[SEP]"],
                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    t.post_processor = processors.BertProcessing(("[SEP]", 1), ("[CLS]", 0))
    yield "splits", t

    # 5. Removed and isolated splits, inverted, CharDelimiterSplit; ByteLevel with prefix space
    #    and its own regex; ByteLevel post-processor trimming offsets; added tokens on normalized text
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.Lowercase()
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.CharDelimiterSplit("|"),
        pre_tokenizers.Split(Regex(r"[a-z]+"), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(corpus, bpe_trainer(900, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    t.post_processor = processors.ByteLevel(trim_offsets=True)
    t.add_tokens([AddedToken("hello", normalized=True), AddedToken("<mask>", special=True)])
    yield "bytelevel", t

def scalar_offsets(text, offsets):
    return [[s, e] for s, e in offsets]   # HF Python already reports character (scalar) offsets

def main():
    os.makedirs(OUT, exist_ok=True)
    for name, tk in pipelines():
        tk.save(os.path.join(OUT, f"{name}.tokenizer.json"))
        with open(os.path.join(OUT, f"{name}.expected.jsonl"), "w", encoding="utf-8") as f:
            for line in sample:
                e = tk.encode(line)
                f.write(json.dumps({"text": line, "ids": e.ids, "offsets": scalar_offsets(line, e.offsets),
                                    "type_ids": e.type_ids,
                                    "decoded": tk.decode(e.ids, skip_special_tokens=True)}, ensure_ascii=False) + "\n")
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name + '.tokenizer.json'))} bytes")

if __name__ == "__main__":
    main()
