#!/usr/bin/env python3
"""Fetch one file of a PyPI release through the registry's simple index, check its sha256.

usage: fetch_pypi.py PROJECT FILENAME SHA256 DEST_DIR

Using the simple index (rather than `pip download`) keeps source distributions from being
built: llama-cpp-python's sdist would otherwise compile llama.cpp just to read its metadata.
Also a module: `index_files`, `fetch` and `digest` serve fetch_model_parts.py.
"""
import hashlib, json, os, sys, urllib.request


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def index_files(project):
    """The project's files as the simple index lists them (filename, url, hashes)."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    req = urllib.request.Request(f"{index}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["files"]


def fetch(project, filename, sha256, dest):
    """DEST/FILENAME, downloaded once (beside, then renamed) and checked against sha256."""
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, filename)
    if os.path.exists(path) and digest(path) == sha256:
        return path
    match = [f for f in index_files(project) if f["filename"] == filename]
    if not match:
        sys.exit(f"fetch_pypi: {project} has no file {filename}")
    tmp = path + ".part"
    with urllib.request.urlopen(match[0]["url"], timeout=600) as r, open(tmp, "wb") as out:
        while chunk := r.read(1 << 20):
            out.write(chunk)
    got = digest(tmp)
    if got != sha256:
        os.remove(tmp)
        sys.exit(f"fetch_pypi: {filename}: sha256 {got}, expected {sha256}")
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    fetch(*sys.argv[1:5])


def record_checksum(models_dir, filename, sha256):
    """Keep `sha256  filename` in MODELS_DIR/SHA256SUMS (sha256sum -c's format), which
    `quill doctor` checks the cached models against."""
    path = os.path.join(models_dir, "SHA256SUMS")
    lines = {}
    if os.path.exists(path):
        for line in open(path):
            if "  " in line:
                digest_, name = line.rstrip("\n").split("  ", 1)
                lines[name] = digest_
    if lines.get(filename) == sha256:
        return
    lines[filename] = sha256
    with open(path + ".part", "w") as out:
        out.writelines(f"{d}  {n}\n" for n, d in sorted(lines.items()))
    os.replace(path + ".part", path)

