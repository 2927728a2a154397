#!/usr/bin/env python3
"""Corpus preparation: `quill prepare` against datatrove doing the same steps on the same input.

    pip install "datatrove[processing]" lxml_html_clean
    swift build -c release
    python3 Benchmarks/prepare_vs_datatrove.py [--megabytes 100]

The input is one JSONL file of HTML pages built from the cached texts (scripts/setup): the
Debian Reference pages in English and Chinese as they are, and Shakespeare and 唐诗/宋词 wrapped
in pages with navigation, header and footer boilerplate; pages repeat with a different tenth of
their paragraphs left out each time (near duplicates), until the size is reached.

datatrove (2 tasks on 2 workers): JsonlReader -> Trafilatura -> GopherRepetitionFilter ->
GopherQualityFilter -> MinhashDedupSignature, then MinhashDedupBuckets, MinhashDedupCluster,
MinhashDedupFilter -> JsonlWriter. Quill: `quill prepare --html-records` (the same extraction,
filters and MinHash dedup, plus its cleaning, exact dedup and report). Both wall-clock timed,
peak memory from the kernel (ru_maxrss of the child processes).
"""
import argparse, gzip, json, os, random, re, resource, shutil, subprocess, sys, tempfile, time
from machine import cpu_features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))

def pages():
    ref = f"{CACHE}/texts/debian-reference"
    for name in sorted(os.listdir(ref)):
        if name.endswith(".html"):
            yield open(os.path.join(ref, name), encoding="utf-8").read()
    nav = '<nav><a href="/">Home</a> | <a href="/books">Books</a> | <a href="/about">About</a></nav>'
    foot = '<footer>Copyright 2024 Example Library. <a href="/privacy">Privacy</a> | Share on Twitter</footer>'
    texts = []
    shakespeare = f"{CACHE}/texts/shakespeare"
    for name in sorted(os.listdir(shakespeare)):
        texts.append(open(os.path.join(shakespeare, name), encoding="utf-8").read())
    for name in ["tang300", "song100", "chinese"]:
        raw = open(f"{CACHE}/texts/fortunes-zh/{name}", encoding="utf-8").read()
        texts.append(re.sub(r"\x1b\[[0-9;]*m", "", raw).replace("\n%\n", "\n\n"))
    for text in texts:
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        for i in range(0, len(paragraphs), 60):   # pages of 60 paragraphs
            body = "".join(f"<p>{p}</p>\n" for p in paragraphs[i:i + 60])
            yield f"<html><head><title>Page</title><script>track();</script></head><body>{nav}<main>{body}</main>{foot}</body></html>"

def build(path, megabytes):
    rng = random.Random(7)
    base = list(pages())
    size, n = 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while size < megabytes * 1e6:
            page = base[n % len(base)]
            if n >= len(base):   # a later copy: a different tenth of the paragraphs left out
                parts = page.split("<p>")
                page = "<p>".join(p for p in parts if rng.random() > 0.1)
            line = json.dumps({"text": page, "id": str(n)}, ensure_ascii=False)
            f.write(line + "\n")
            size += len(line.encode())
            n += 1
    return n

def timed(cmd, **kw):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.time()
    subprocess.run(cmd, check=True, **kw)
    return time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

DATATROVE = r'''
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.dedup import MinhashDedupSignature, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
from datatrove.pipeline.dedup.minhash import MinhashConfig
def run():
    data, work = sys.argv[1], sys.argv[2]
    config = MinhashConfig()
    tasks = 2
    LocalPipelineExecutor(pipeline=[JsonlReader(data), Trafilatura(favour_precision=True), GopherRepetitionFilter(), GopherQualityFilter(),
                                    MinhashDedupSignature(output_folder=f"{work}/signatures", config=config)],
                          tasks=tasks, workers=2, logging_dir=f"{work}/logs1").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(input_folder=f"{work}/signatures", output_folder=f"{work}/buckets", config=config)],
                          tasks=config.num_buckets, workers=2, logging_dir=f"{work}/logs2").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config)],
                          tasks=1, logging_dir=f"{work}/logs3").run()
    LocalPipelineExecutor(pipeline=[JsonlReader(data), Trafilatura(favour_precision=True), GopherRepetitionFilter(), GopherQualityFilter(),
                                    MinhashDedupFilter(input_folder=f"{work}/remove_ids"), JsonlWriter(f"{work}/out")],
                          tasks=tasks, workers=2, logging_dir=f"{work}/logs4").run()

if __name__ == "__main__":
    run()
'''

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--megabytes", type=float, default=100)
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    a = ap.parse_args()
    print(f"cpu: {cpu_features()}", flush=True)
    work = tempfile.mkdtemp(prefix="quill-prepare-bench-")
    try:
        os.makedirs(f"{work}/in")
        docs = build(f"{work}/in/corpus.jsonl", a.megabytes)
        mb = os.path.getsize(f"{work}/in/corpus.jsonl") / 1e6
        print(f"input: {docs} HTML pages in one JSONL file, {mb:.1f} MB")
        q, q_mem = timed([a.quill, "prepare", f"{work}/in", "-o", f"{work}/quill", "--html-records"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        report = json.load(open(f"{work}/quill/report.json"))
        print(f"quill prepare: {q:6.1f} s  {mb / q:6.2f} MB/s  peak {q_mem:.0f} MB  kept {report['documentsKept']} of {report['documentsIn']}")
        script = f"{work}/datatrove_pipeline.py"
        open(script, "w").write(DATATROVE)
        d, d_mem = timed([sys.executable, script, f"{work}/in", f"{work}/dt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kept = sum(sum(1 for _ in gzip.open(os.path.join(f"{work}/dt/out", f), "rt")) for f in os.listdir(f"{work}/dt/out"))
        print(f"datatrove:     {d:6.1f} s  {mb / d:6.2f} MB/s  peak {d_mem:.0f} MB  kept {kept} of {docs}")
        print(f"ratio: Quill {d / q:.1f}x datatrove's throughput")
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
