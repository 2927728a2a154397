#!/usr/bin/env python3
"""`quill pull` against a Hugging Face Hub served on loopback by this script (fake_hub.py: the API
routes, LFS and non-LFS files, redirects, ETags, Range), with the real huggingface_hub package on
the same cache:

    pip install huggingface_hub
    python3 Tests/HubChecks/check_pull.py [--quill .build/release/quill]

1. A pull (LFS and non-LFS files, a file in a subdirectory): huggingface_hub's scan_cache_dir()
   reports the repository with no warnings, hf_hub_download(..., local_files_only=True) and
   snapshot_download(local_files_only=True) read Quill's files, with the served bytes.
2. The other way: a GGUF model downloaded by huggingface_hub is found by Quill offline (`quill
   pull` with HF_HUB_OFFLINE=1, and `quill generate -m ORG/NAME`).
3. A pull killed midway through a file (SIGKILL): the revision still names the previous complete
   snapshot; the re-run resumes with a Range request from where the file stopped, fetching fewer
   bytes than the file, and ends with the new snapshot.
4. Bytes that do not match their ETag are refused and leave no blob; offline mode sends nothing;
   --include / --exclude select files; a missing repository, a missing revision, a private
   repository without its token: each a clear error, nothing left in the cache's refs.
Exits 1 on the first failure, naming it.
"""
import argparse, hashlib, os, random, shutil, signal, subprocess, sys, tempfile, time, warnings
from fake_hub import FakeHub, Repo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
ap = argparse.ArgumentParser()
ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
a = ap.parse_args()

work = tempfile.mkdtemp(prefix="quill-hub-")
hf_home = os.path.join(work, "hf")
hub = FakeHub()
env = dict(os.environ, HF_HOME=hf_home, HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1")
env.pop("HF_TOKEN", None)
env.pop("HF_HUB_OFFLINE", None)
env.pop("HF_HUB_CACHE", None)
os.environ.update(env)
failures = []


def fail(message):
    print(f"FAIL {message}", flush=True)
    failures.append(message)


def quill(*args, extra_env=None, check=True):
    out = subprocess.run([a.quill, *args], capture_output=True, text=True, env=dict(env, **(extra_env or {})))
    if check and out.returncode != 0:
        fail(f"quill {' '.join(args)} exited {out.returncode}: {out.stderr[-600:]}")
    return out


def repo_dir(repo):
    return os.path.join(hf_home, "hub", "models--" + repo.replace("/", "--"))


def ref(repo, name="main"):
    path = os.path.join(repo_dir(repo), "refs", name)
    return open(path).read().strip() if os.path.exists(path) else None


random.seed(0)
weights = random.randbytes(12 << 20)
files = {"config.json": b'{"model_type": "llama"}\n', "model.safetensors": weights, "sub/notes.txt": "说明：a note\n".encode(),
         "weights.bin": random.randbytes(1 << 20)}
hub.repos["quill-test/tiny"] = Repo(files, lfs={"model.safetensors", "weights.bin"})

# 1. Quill writes, huggingface_hub reads
out = quill("pull", "quill-test/tiny", "--exclude", "*.bin")
commit = hub.repos["quill-test/tiny"].refs["main"]
snapshot = os.path.join(repo_dir("quill-test/tiny"), "snapshots", commit)
if out.stdout.strip().splitlines()[-1] != snapshot:
    fail(f"quill pull printed {out.stdout.strip().splitlines()[-1:]}, expected the snapshot {snapshot}")
from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    info = scan_cache_dir(os.path.join(hf_home, "hub"))
repos = {r.repo_id: r for r in info.repos}
if info.warnings or caught or "quill-test/tiny" not in repos:
    fail(f"scan_cache_dir: warnings {info.warnings} {[str(w.message) for w in caught]}, repos {list(repos)}")
else:
    revisions = list(repos["quill-test/tiny"].revisions)
    seen = {f.file_name for f in revisions[0].files} if revisions else set()
    if [r.commit_hash for r in revisions] != [commit] or revisions[0].refs != frozenset({"main"}) or seen != {"config.json", "model.safetensors", "notes.txt"}:
        fail(f"scan_cache_dir: revisions {[(r.commit_hash, r.refs) for r in revisions]}, files {seen}")
for name, data in files.items():
    if name == "weights.bin":
        continue
    path = hf_hub_download("quill-test/tiny", name, local_files_only=True)
    if open(path, "rb").read() != data:
        fail(f"hf_hub_download(local_files_only) of {name}: other bytes")
if os.path.realpath(snapshot_download("quill-test/tiny", local_files_only=True)) != os.path.realpath(snapshot):
    fail("snapshot_download(local_files_only) found another snapshot")
if os.path.exists(os.path.join(snapshot, "weights.bin")):
    fail("--exclude '*.bin' downloaded weights.bin")
print(f"quill pull: {len(files) - 1} files (2 LFS, 1 in a subdirectory); scan_cache_dir: no warnings, "
      f"size {repos['quill-test/tiny'].size_on_disk} bytes; hf_hub_download and snapshot_download (local_files_only) read them", flush=True)

# 2. huggingface_hub writes, Quill reads (a real model, offline)
gguf = open(os.path.join(CACHE, "models/SmolLM2-135M-Instruct.Q4_1.gguf"), "rb").read()
hub.repos["quill-test/smollm2-gguf"] = Repo({"SmolLM2-135M-Instruct.Q4_1.gguf": gguf, "README.md": b"# SmolLM2\n"},
                                            lfs={"SmolLM2-135M-Instruct.Q4_1.gguf"})
snapshot_download("quill-test/smollm2-gguf")
before = len(hub.requests())
out = quill("pull", "quill-test/smollm2-gguf", extra_env={"HF_HUB_OFFLINE": "1"})
generated = quill("generate", "-m", "quill-test/smollm2-gguf", "-p", "The capital of France is", "--max-tokens", "8", "--temperature", "0",
                  extra_env={"HF_HUB_OFFLINE": "1"})
if len(hub.requests()) != before:
    fail(f"offline mode sent {len(hub.requests()) - before} requests")
print(f"huggingface_hub's download read by Quill offline: quill generate -m quill-test/smollm2-gguf -> "
      f"{generated.stdout.strip()[:60]!r}; no request sent", flush=True)

# 3. Killed midway; the previous snapshot stays the one main names; the re-run resumes
tiny = hub.repos["quill-test/tiny"]
new_weights = random.randbytes(12 << 20)
new_commit = tiny.commit("main", dict(files, **{"model.safetensors": new_weights}))
tiny.slow["model.safetensors"] = 0.02       # about 3 MB/s
process = subprocess.Popen([a.quill, "pull", "quill-test/tiny", "--exclude", "*.bin"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
partial = os.path.join(repo_dir("quill-test/tiny"), "blobs", hashlib.sha256(new_weights).hexdigest() + ".incomplete")
deadline = time.time() + 60
while time.time() < deadline and (not os.path.exists(partial) or os.path.getsize(partial) < (3 << 20)):
    time.sleep(0.05)
process.send_signal(signal.SIGKILL)
process.wait()
kept = os.path.getsize(partial) if os.path.exists(partial) else 0
if ref("quill-test/tiny") != commit:
    fail(f"after the kill, refs/main is {ref('quill-test/tiny')}, not the previous complete commit {commit}")
if hf_hub_download("quill-test/tiny", "model.safetensors", local_files_only=True) and \
        open(hf_hub_download("quill-test/tiny", "model.safetensors", local_files_only=True), "rb").read() != weights:
    fail("after the kill, main's model.safetensors is not the previous snapshot's")
tiny.slow.clear()
before = len(hub.requests())
out = quill("pull", "quill-test/tiny", "--exclude", "*.bin")
ranges = [r for m, p, r, _ in hub.requests()[before:] if m == "GET" and p.startswith("/lfs/" + hashlib.sha256(new_weights).hexdigest())]
resumed_from = int(ranges[0][6:].split("-")[0]) if ranges and ranges[0] else 0
if ref("quill-test/tiny") != new_commit or resumed_from == 0 or resumed_from > kept:
    fail(f"re-run: refs/main {ref('quill-test/tiny')} (want {new_commit}), Range {ranges}, {kept} bytes were kept")
path = hf_hub_download("quill-test/tiny", "model.safetensors", local_files_only=True)
if open(path, "rb").read() != new_weights:
    fail("the resumed file's bytes differ from the served ones")
print(f"killed at {kept} of {len(new_weights)} bytes: refs/main stayed on the complete {commit[:8]}; the re-run sent Range "
      f"{ranges[0] if ranges else None}, fetched {len(new_weights) - resumed_from} bytes, and main is now {new_commit[:8]}", flush=True)

# 4. Refusals
hub.repos["quill-test/corrupt"] = Repo({"model.safetensors": random.randbytes(1 << 20)}, lfs={"model.safetensors"})
hub.repos["quill-test/corrupt"].corrupt.add("model.safetensors")
out = quill("pull", "quill-test/corrupt", check=False)
blobs = os.path.join(repo_dir("quill-test/corrupt"), "blobs")
left = os.listdir(blobs) if os.path.isdir(blobs) else []
if out.returncode == 0 or "ETag" not in out.stderr or left or ref("quill-test/corrupt"):
    fail(f"corrupt bytes: exit {out.returncode}, {out.stderr[-300:]!r}, blobs left {left}")
else:
    print(f"refused: {out.stderr.strip().splitlines()[-1][:160]}", flush=True)

hub.repos["quill-test/private"] = Repo({"config.json": b"{}", "model.safetensors": random.randbytes(1 << 16)},
                                       lfs={"model.safetensors"}, private_token="secret")
for args, extra, says in [(["quill-test/missing"], {}, "no such model"),
                          (["quill-test/tiny@no-such-branch"], {}, "no such branch"),
                          (["quill-test/private"], {}, "HF_TOKEN"),
                          (["quill-test/never-pulled"], {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"),
                          (["../etc/passwd"], {}, "not a repository name")]:
    before = len(hub.requests())
    out = quill("pull", *args, extra_env=extra, check=False)
    if out.returncode == 0 or says not in out.stderr:
        fail(f"quill pull {args[0]}: exit {out.returncode}, {out.stderr[-300:]!r}")
    elif extra and len(hub.requests()) != before:
        fail("offline mode sent a request")
    else:
        print(f"refused: {out.stderr.strip().splitlines()[-1][:160]}", flush=True)
before = len(hub.requests())
out = quill("pull", "quill-test/private", extra_env={"HF_TOKEN": "secret"})
leaked = [p for m, p, r, auth in hub.requests()[before:] if p.startswith("/lfs/") and auth]
if ref("quill-test/private") is None or leaked:
    fail(f"quill pull with HF_TOKEN: refs/main {ref('quill-test/private')}; the token went to the storage host: {leaked}")
else:
    print("private repository with HF_TOKEN: pulled; the token was sent to the Hub, not to the storage host", flush=True)

out = quill("pull", "quill-test/tiny", "--include", "*.json", "--include", "sub/*")
chosen = sorted(f.split(": ")[0].strip().split(" (")[0] for f in out.stderr.splitlines() if " bytes): " in f)
if chosen != ["config.json", "sub/notes.txt"]:
    fail(f"--include '*.json' --include 'sub/*' chose {chosen}")

hub.stop()
shutil.rmtree(work, ignore_errors=True)
if failures:
    sys.exit(f"{len(failures)} failures: {failures}")
print("ok")
