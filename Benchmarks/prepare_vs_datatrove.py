#!/usr/bin/env python3
"""Corpus preparation: `quill prepare` against datatrove doing the same steps on the same input.

    pip install "datatrove[processing]" lxml_html_clean
    swift build -c release --product quill
    python3 Benchmarks/prepare_vs_datatrove.py [--megabytes 30] [--rounds 3] [--workers 2]

The input is JSONL files of HTML pages built from the cached texts (scripts/setup): the Debian
Reference pages in English and Chinese as they are, and Shakespeare and 唐诗/宋词 wrapped in pages
with navigation, header and footer boilerplate; pages repeat with a different tenth of their
paragraphs left out each time (near duplicates), until the size is reached (the 893 distinct
pages make 12.3 MB). The pages, shuffled, are dealt round-robin into as many files as workers, so
datatrove's tasks each get a file.

datatrove, as its MinHash example runs it, with tasks = workers: (1) JsonlReader -> Trafilatura ->
GopherRepetitionFilter -> GopherQualityFilter -> JsonlWriter (the filtered pages) ->
MinhashDedupSignature; (2) MinhashDedupBuckets; (3) MinhashDedupCluster; (4) JsonlReader of the
filtered pages -> MinhashDedupFilter -> JsonlWriter. Extraction and filters run once.
Quill: `quill prepare --html-records --threads WORKERS` (the same extraction, quality filters and
MinHash dedup, plus its cleaning, exact dedup, splits and report).

Each round runs both sides, the order alternating between rounds. Printed per side: wall time
(mean and best), throughput, peak memory of all its processes summed (sampled from /proc), and
what it kept: pages, distinct source pages among them (the rest are near-duplicate copies left),
Chinese pages, and pages still holding the injected navigation or footer.
"""
import argparse, gzip, json, os, random, re, shutil, subprocess, sys, tempfile
from machine import cpu_features, run_measured

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
NAV = '<nav><a href="/">Home</a> | <a href="/books">Books</a> | <a href="/about">About</a></nav>'
FOOT = '<footer>Copyright 2024 Example Library. <a href="/privacy">Privacy</a> | Share on Twitter</footer>'
BOILERPLATE = ("Share on Twitter", "Home | Books", "Example Library")


def pages():
    """(language, HTML) for each source page."""
    ref = f"{CACHE}/texts/debian-reference"
    for name in sorted(os.listdir(ref)):
        if name.endswith(".html"):
            yield ("zh" if ".zh" in name else "en"), open(os.path.join(ref, name), encoding="utf-8").read()
    texts = []
    shakespeare = f"{CACHE}/texts/shakespeare"
    for name in sorted(os.listdir(shakespeare)):
        texts.append(("en", open(os.path.join(shakespeare, name), encoding="utf-8").read()))
    for name in ["tang300", "song100", "chinese"]:
        raw = open(f"{CACHE}/texts/fortunes-zh/{name}", encoding="utf-8").read()
        texts.append(("zh", re.sub(r"\x1b\[[0-9;]*m", "", raw).replace("\n%\n", "\n\n")))
    for language, text in texts:
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        for i in range(0, len(paragraphs), 60):   # pages of 60 paragraphs
            body = "".join(f"<p>{p}</p>\n" for p in paragraphs[i:i + 60])
            yield language, f"<html><head><title>Page</title><script>track();</script></head><body>{NAV}<main>{body}</main>{FOOT}</body></html>"


def build(folder, megabytes, files):
    """Writes the input files; returns the source page and language of each document id."""
    rng = random.Random(7)
    base = list(pages())
    rng.shuffle(base)   # each file a mix of the sources
    outs = [open(os.path.join(folder, f"part-{k}.jsonl"), "w", encoding="utf-8") for k in range(files)]
    origin, size, n = {}, 0, 0
    while size < megabytes * 1e6:
        language, page = base[n % len(base)]
        if n >= len(base):   # a later copy: a different tenth of the paragraphs left out
            parts = page.split("<p>")
            page = "<p>".join(p for p in parts if rng.random() > 0.1)
        line = json.dumps({"text": page, "id": str(n)}, ensure_ascii=False)
        outs[n % files].write(line + "\n")
        origin[str(n)] = (n % len(base), language)
        size += len(line.encode())
        n += 1
    for f in outs:
        f.close()
    return origin


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
    data, work, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = MinhashConfig()
    LocalPipelineExecutor(pipeline=[JsonlReader(data), Trafilatura(favour_precision=True), GopherRepetitionFilter(), GopherQualityFilter(),
                                    JsonlWriter(f"{work}/filtered"), MinhashDedupSignature(output_folder=f"{work}/signatures", config=config)],
                          tasks=workers, workers=workers, logging_dir=f"{work}/logs1").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(input_folder=f"{work}/signatures", output_folder=f"{work}/buckets", config=config)],
                          tasks=config.num_buckets, workers=workers, logging_dir=f"{work}/logs2").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config)],
                          tasks=1, logging_dir=f"{work}/logs3").run()
    LocalPipelineExecutor(pipeline=[JsonlReader(f"{work}/filtered"), MinhashDedupFilter(input_folder=f"{work}/remove_ids"),
                                    JsonlWriter(f"{work}/out")],
                          tasks=workers, workers=workers, logging_dir=f"{work}/logs4").run()

if __name__ == "__main__":
    run()
'''


def kept_summary(records, origin):
    """(kept, distinct source pages, Chinese pages, pages with boilerplate) of (id, text) pairs."""
    records = list(records)
    sources = {origin[i][0] for i, _ in records}
    chinese = sum(1 for i, _ in records if origin[i][1] == "zh")
    boilerplate = sum(1 for _, text in records if any(b in text for b in BOILERPLATE))
    return len(records), len(sources), chinese, boilerplate


def quill_kept(folder, files):
    """Quill's kept pages (train, validation and test), as (id, text): the id from file and line."""
    for split in ("train", "validation", "test"):
        for line in open(os.path.join(folder, f"{split}.jsonl"), encoding="utf-8"):
            r = json.loads(line)
            k = int(re.search(r"part-(\d+)\.jsonl$", r["source"]).group(1))
            yield str((r["position"] - 1) * files + k), r["text"]


def datatrove_kept(folder):
    for name in sorted(os.listdir(folder)):
        for line in gzip.open(os.path.join(folder, name), "rt", encoding="utf-8"):
            r = json.loads(line)
            yield r["id"], r["text"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--megabytes", type=float, default=30, help="input size (the distinct pages make 12.3 MB; the rest are copies)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="datatrove's tasks and workers, Quill's --threads")
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    a = ap.parse_args()
    print(f"cpu: {cpu_features()}", flush=True)
    work = tempfile.mkdtemp(prefix="quill-prepare-bench-")
    try:
        os.makedirs(f"{work}/in")
        origin = build(f"{work}/in", a.megabytes, a.workers)
        mb = sum(os.path.getsize(os.path.join(f"{work}/in", f)) for f in os.listdir(f"{work}/in")) / 1e6
        distinct = len({o[0] for o in origin.values()})
        print(f"input: {len(origin)} HTML pages ({distinct} distinct sources, the rest near-duplicate copies) "
              f"in {a.workers} JSONL files, {mb:.1f} MB; {a.workers} workers each side", flush=True)
        script = f"{work}/datatrove_pipeline.py"
        open(script, "w").write(DATATROVE)

        def quill():
            out = f"{work}/quill"
            shutil.rmtree(out, ignore_errors=True)
            seconds, peak, _ = run_measured([a.quill, "prepare", f"{work}/in", "-o", out, "--html-records", "--threads", str(a.workers)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return seconds, peak, kept_summary(quill_kept(out, a.workers), origin)

        def datatrove():
            out = f"{work}/dt"
            shutil.rmtree(out, ignore_errors=True)
            seconds, peak, _ = run_measured([sys.executable, script, f"{work}/in", out, str(a.workers)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return seconds, peak, kept_summary(datatrove_kept(f"{out}/out"), origin)

        results = {"quill prepare": [], "datatrove": []}
        for r in range(a.rounds):
            order = [("quill prepare", quill), ("datatrove", datatrove)]
            for name, side in (order if r % 2 == 0 else order[::-1]):
                seconds, peak, kept = side()
                results[name].append((seconds, peak, kept))
                print(f"round {r + 1}: {name:14s} {seconds:6.1f} s  peak {peak / 1e6:5.0f} MB", flush=True)
        for name, runs in results.items():
            times = [s for s, _, _ in runs]
            mean, peak = sum(times) / len(times), max(p for _, p, _ in runs)
            kept, sources, chinese, boilerplate = runs[-1][2]
            print(f"{name:14s} mean {mean:6.1f} s (best {min(times):.1f})  {mb / mean:6.2f} MB/s  peak {peak / 1e6:5.0f} MB summed  "
                  f"kept {kept} of {len(origin)}: {sources} distinct sources, {kept - sources} copies left, {chinese} Chinese, "
                  f"{boilerplate} with navigation/footer")
        q = sum(s for s, _, _ in results["quill prepare"]); d = sum(s for s, _, _ in results["datatrove"])
        print(f"ratio: Quill {d / q:.1f}x datatrove's throughput, "
              f"{max(p for _, p, _ in results['datatrove']) / max(p for _, p, _ in results['quill prepare']):.1f}x less memory")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
