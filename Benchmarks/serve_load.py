#!/usr/bin/env python3
"""Serving under load: `quill serve` against llama.cpp's `llama-server` on the same model, same run.

    swift build -c release
    Benchmarks/build_llama_cpp.sh                         # llama-server, once (about 15 minutes)
    python3 Benchmarks/serve_load.py [--streams 4 8] [--requests 16] [--tokens 128]

For each concurrency, N client threads each send streaming `POST /v1/completions` requests
(128 tokens each, EOS ignored on both servers, temperature 0.8, a different prompt each) until the
fixed number of requests is done. Printed per server: aggregate generated tokens/s (completion
tokens over the wall time of the whole batch), time to first token p50/p99, time per output token
p50/p99 (after the first), and failed requests; then Quill's throughput over llama-server's.
llama-server runs with `--parallel N -t 2` (continuous batching is its default) and a context of
N x 512; quill with `--parallel N`. The servers run one after the other, never together.
"""
import argparse, http.client, json, os, re, statistics, subprocess, sys, threading, time
from machine import cpu_features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
MODEL = f"{CACHE}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = ["Write a story about a lighthouse keeper.", "Explain how bread is made, step by step.", "The history of the silk road begins",
           "Describe a walk through a forest in autumn.", "A letter to a friend who moved to another city:", "写一段关于春天的文字：",
           "List some ideas for a small garden.", "The old sailor told the children that"]

def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

def wait_ready(port, process, deadline=180):
    end = time.time() + deadline
    while time.time() < end:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("server not ready")

def one_request(port, prompt, tokens, seed):
    body = {"model": "smollm2", "prompt": prompt, "max_tokens": tokens, "temperature": 0.8, "seed": seed, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        r.read()
        return {"error": r.status}
    first, count, usage, buffer = None, 0, None, b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            data = json.loads(event[6:])
            if data.get("usage"):
                usage = data["usage"]["completion_tokens"]
            for ch in data.get("choices") or []:
                if ch.get("text"):
                    if first is None:
                        first = time.perf_counter()
                    count += 1
    end = time.perf_counter()
    generated = usage if usage is not None else count
    return {"ttft": (first or end) - start, "tpot": (end - (first or end)) / max(1, generated - 1), "tokens": generated}

def load(port, streams, requests, tokens):
    results, lock, next_index = [], threading.Lock(), [0]
    def client():
        while True:
            with lock:
                i = next_index[0]
                if i >= requests:
                    return
                next_index[0] += 1
            try:
                r = one_request(port, PROMPTS[i % len(PROMPTS)], tokens, i)
            except Exception as e:
                r = {"error": str(e)}
            with lock:
                results.append(r)
    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = [r for r in results if "error" not in r]
    return {"tok_s": sum(r["tokens"] for r in ok) / wall, "ttft50": percentile([r["ttft"] for r in ok], 50),
            "ttft99": percentile([r["ttft"] for r in ok], 99), "tpot50": percentile([r["tpot"] for r in ok], 50),
            "tpot99": percentile([r["tpot"] for r in ok], 99), "errors": len(results) - len(ok), "tokens": sum(r["tokens"] for r in ok)}

def start_quill(streams, port):
    quill = os.path.join(ROOT, ".build", "release", "quill")
    return subprocess.Popen([quill, "serve", "-m", MODEL, "--model-name", "smollm2", "--port", str(port), "--parallel", str(streams),
                             "--log-level", "warning"], stderr=subprocess.DEVNULL)

def start_llama(streams, port, bindir):
    return subprocess.Popen([os.path.join(bindir, "llama-server"), "-m", MODEL, "--port", str(port), "--parallel", str(streams),
                             "-t", "2", "-c", str(512 * streams), "--alias", "smollm2", "--log-disable"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN"))
    args = ap.parse_args()
    print(f"cpu: {cpu_features()}", flush=True)
    bindir = args.llama_bin or subprocess.run([os.path.join(ROOT, "Benchmarks", "build_llama_cpp.sh")], capture_output=True,
                                              text=True, check=True).stdout.strip()
    print(f"model {os.path.basename(MODEL)}, {args.requests} streaming requests of {args.tokens} tokens per level, 2 threads")
    for streams in args.streams:
        rows = {}
        for name, start in [("llama-server", lambda p: start_llama(streams, p, bindir)), ("quill", lambda p: start_quill(streams, p))]:
            port = 18000 + streams + (0 if name == "quill" else 100)
            process = start(port)
            try:
                wait_ready(port, process)
                load(port, streams, streams, 16)   # warm-up
                rows[name] = load(port, streams, args.requests, args.tokens)
            finally:
                process.terminate()
                process.wait(30)
            r = rows[name]
            print(f"{streams} streams  {name:12s} {r['tok_s']:7.1f} tok/s  TTFT p50 {r['ttft50']*1000:6.0f} ms p99 {r['ttft99']*1000:6.0f} ms  "
                  f"TPOT p50 {r['tpot50']*1000:5.1f} ms p99 {r['tpot99']*1000:5.1f} ms  errors {r['errors']}", flush=True)
        print(f"{streams} streams  quill / llama-server throughput: {rows['quill']['tok_s'] / rows['llama-server']['tok_s']:.2f}x", flush=True)

if __name__ == "__main__":
    main()
