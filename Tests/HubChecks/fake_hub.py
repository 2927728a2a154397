"""A Hugging Face Hub on loopback, with the routes huggingface_hub and `quill pull` call:

    GET  /api/models/{repo}/revision/{revision}       {"sha", "siblings": [{"rfilename"}]}
    GET  /api/models/{repo}/tree/{revision}           [{"type", "path", "size", "oid", "lfs"}] (huggingface_hub's snapshot_download)
    HEAD /{repo}/resolve/{revision}/{path}            X-Repo-Commit, ETag (git sha1) and Content-Length;
                                                      LFS files: 302 to /lfs/{sha256} with X-Linked-Etag, X-Linked-Size
    GET  the same, and /lfs/{sha256}                  the bytes, with Range (206) support

Errors as the Hub answers them: 404 with X-Error-Code RepoNotFound / RevisionNotFound /
EntryNotFound, 401 (RepoNotFound) for a private repository without its token. Files can be
served slowly (to kill a download midway) or with bytes that do not match their ETag. LFS
files redirect to a second loopback host (127.0.0.2), as the Hub's go to its storage. Every
request is logged (method, path, Range, whether it carried a token) for the checks to read."""
import hashlib, json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, files, lfs=(), private_token=None):
        self.commits = {}      # commit -> {path: bytes}
        self.refs = {}         # branch/tag -> commit
        self.lfs = set(lfs)
        self.private_token = private_token
        self.corrupt = set()   # paths served with other bytes than their ETag says
        self.slow = {}         # path -> seconds per 64 KiB
        self.commit("main", files)

    def commit(self, ref, files):
        sha = hashlib.sha1(json.dumps(sorted((p, hashlib.sha256(b).hexdigest()) for p, b in files.items())).encode()
                           + ref.encode()).hexdigest()
        self.commits[sha] = dict(files)
        self.refs[ref] = sha
        return sha


class FakeHub:
    def __init__(self):
        self.repos = {}
        self.log = []
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub.handle(self, head=True)

            def do_GET(self):
                hub.handle(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # LFS bytes come from another host, as the Hub's come from its storage: huggingface_hub
        # then reads the file's metadata from the redirect itself and sends no token there
        self.storage = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.storage_url = f"http://127.0.0.2:{self.storage.server_address[1]}"
        for server in (self.server, self.storage):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.storage.shutdown()

    def requests(self):
        with self.lock:
            return list(self.log)

    # routing

    def handle(self, h, head):
        with self.lock:
            self.log.append((h.command, h.path, h.headers.get("Range"), "Authorization" in h.headers))
        path = h.path.split("?")[0]
        try:
            if path.startswith("/api/models/"):
                return self.api(h, path[len("/api/models/"):])
            if path.startswith("/lfs/"):
                return self.lfs(h, path[len("/lfs/"):], head)
            parts = path.lstrip("/").split("/", 4)
            if len(parts) == 5 and parts[2] == "resolve":
                return self.resolve(h, f"{parts[0]}/{parts[1]}", parts[3], parts[4], head)
            self.error(h, 404, "", "not a route")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def error(self, h, status, code, message):
        body = json.dumps({"error": message}).encode()
        h.send_response(status)
        if code:
            h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", message)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def find(self, h, repo_id, revision):
        """(repo, commit) or None after answering the error."""
        repo = self.repos.get(repo_id)
        if repo is None:
            self.error(h, 401 if "Authorization" not in h.headers else 404, "RepoNotFound", "Repository not found")
            return None
        if repo.private_token and h.headers.get("Authorization") != f"Bearer {repo.private_token}":
            self.error(h, 401, "RepoNotFound", "Invalid credentials")
            return None
        commit = revision if revision in repo.commits else repo.refs.get(revision.replace("%2F", "/"))
        if commit is None:
            self.error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo, commit

    def api(self, h, rest):
        if "/tree/" in rest:
            return self.tree(h, *rest.partition("/tree/")[::2])
        repo_id, _, revision = rest.partition("/revision/")
        found = self.find(h, repo_id, revision or "main")
        if not found:
            return
        repo, commit = found
        body = json.dumps({"id": repo_id, "sha": commit, "private": bool(repo.private_token),
                           "siblings": [{"rfilename": p} for p in sorted(repo.commits[commit])]}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def tree(self, h, repo_id, revision):
        """`/api/models/{repo}/tree/{revision}?recursive=true`: every file and directory, one page."""
        found = self.find(h, repo_id, revision)
        if not found:
            return
        repo, commit = found
        entries, directories = [], set()
        for path, data in sorted(repo.commits[commit].items()):
            parts = path.split("/")
            for i in range(1, len(parts)):
                directories.add("/".join(parts[:i]))
            entry = {"type": "file", "path": path, "size": len(data), "oid": git_sha1(data)}
            if path in repo.lfs:
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        entries += [{"type": "directory", "path": d, "oid": git_sha1(d.encode()), "size": 0} for d in sorted(directories)]
        body = json.dumps(entries).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def resolve(self, h, repo_id, revision, path, head):
        found = self.find(h, repo_id, revision)
        if not found:
            return
        repo, commit = found
        data = repo.commits[commit].get(path)
        if data is None:
            return self.error(h, 404, "EntryNotFound", f"{path} does not exist at {commit}")
        if path in repo.lfs:
            sha = hashlib.sha256(data).hexdigest()
            h.send_response(302)
            h.send_header("Location", f"{self.storage_url}/lfs/{sha}?repo={repo_id}&path={path}")
            h.send_header("X-Repo-Commit", commit)
            h.send_header("X-Linked-Etag", f'"{sha}"')
            h.send_header("X-Linked-Size", str(len(data)))
            h.send_header("ETag", f'"{git_sha1(b"pointer " + sha.encode())}"')
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        self.send_bytes(h, repo, path, data, f'"{git_sha1(data)}"', head, commit)

    def lfs(self, h, sha, head):
        for repo in self.repos.values():
            for files in repo.commits.values():
                for path, data in files.items():
                    if path in repo.lfs and hashlib.sha256(data).hexdigest() == sha:
                        return self.send_bytes(h, repo, path, data, f'"{sha}"', head, None)
        self.error(h, 404, "", "no such object")

    def send_bytes(self, h, repo, path, data, etag, head, commit):
        if path in repo.corrupt:
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        start, status = 0, 200
        requested = h.headers.get("Range")
        if requested and requested.startswith("bytes="):
            start = int(requested[6:].split("-")[0])
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        h.send_response(status)
        h.send_header("ETag", etag)
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(len(data) - start))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if head:
            return
        delay = repo.slow.get(path, 0)
        for at in range(start, len(data), 65536):
            h.wfile.write(data[at:at + 65536])
            if delay:
                h.wfile.flush()
                time.sleep(delay)
