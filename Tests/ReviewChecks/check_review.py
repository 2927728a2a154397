"""quill review from outside: a real headless Chromium (Selenium, Debian's chromium + chromium-driver),
concurrent reviewers over HTTP, and SIGKILL during voting.

    pip install selenium            (scripts/test does this; apt-get install chromium chromium-driver)
    python3 Tests/ReviewChecks/check_review.py [--quill .build/release/quill] [--load-seconds 60] [--artifacts DIR]

1. Browser: a reviewer opens their link, votes by clicking and by keys, reloads and continues where
   they were; a second reviewer votes at the same time; the language switch shows Chinese; a
   `<script>` answer and Chinese answers are shown as text; the results page shows the chart.
   Screenshots go to --artifacts.
2. Load: 8 reviewers vote concurrently through HTTP for --load-seconds; the votes in SQLite equal
   the acknowledged ones.
3. SIGKILL of the server while 8 reviewers vote: every acknowledged vote is in SQLite, and the
   study serves again.
4. The automatic judge against a real `quill serve` (the default model): every comparison judged
   twice, the votes stored as the judge's and reported apart from people's.
"""
import argparse, json, os, re, signal, sqlite3, subprocess, sys, tempfile, threading, time, urllib.request, urllib.error

FAILED = []


def check(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        FAILED.append(what)


class Server:
    """`quill review serve` on a free port; the links it prints."""

    def __init__(self, quill, database, study, reviewers=()):
        cmd = [quill, "review", "serve", study, "--database", database, "--port", "0", "--bootstrap", "200"]
        for r in reviewers:
            cmd += ["--reviewer", r]
        self.process = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.links, self.url, self.admin = {}, None, None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            if m := re.search(r"on (http://\S+)", line):
                self.url = m.group(1)
            if m := re.search(r"results \(admin\): (\S+)", line):
                self.admin = m.group(1)
            if m := re.search(r"link for (.+): (\S+)", line):
                self.links[m.group(1)] = m.group(2)
            if self.admin and len(self.links) == len(reviewers):
                break
        threading.Thread(target=self.process.stderr.read, daemon=True).start()
        if not self.url:
            raise SystemExit("quill review serve did not start")
        self.key = self.admin.split("key=")[1]

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        self.process.wait(timeout=30)


def request(url, method="GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def make_study(quill, workdir, database, name, prompts):
    """Three systems' answers as files (Chinese, a <script> answer, long multi-line answers)."""
    files = []
    for s, style in enumerate(["plain", "poet", "terse"]):
        path = os.path.join(workdir, f"{name}-{style}.jsonl")
        with open(path, "w") as f:
            for i in range(prompts):
                if s == 2 and i % 2 == 0:
                    answer = "<script>document.title='pwned'</script><b>not bold</b>"
                elif s == 1:
                    answer = f"床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n({i})\n" + "长句子。" * 40
                else:
                    answer = f"Answer {i} in {style} style.\n" + "\n".join(f"line {k}" for k in range(30))
                f.write(json.dumps({"id": i, "prompt": f"Prompt {i}: 写一首关于月亮的诗 <i>{i}</i>", "output": answer}, ensure_ascii=False) + "\n")
        files.append(path)
    out = subprocess.run([quill, "review", "new", name, "--database", database, "--outputs", *files, "--name", "plain", "--name", "poet",
                          "--name", "terse"], capture_output=True, text=True)
    check(out.returncode == 0, f"quill review new {name} ({out.stdout.strip().splitlines()[0] if out.stdout else out.stderr.strip()})")


def browser_check(server, artifacts):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def driver(lang):
        options = webdriver.ChromeOptions()
        for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", f"--lang={lang}"]:
            options.add_argument(a)
        options.add_experimental_option("prefs", {"intl.accept_languages": lang})
        binary = next((p for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] if os.path.exists(p)), None)
        if binary:
            options.binary_location = binary
        return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)

    alice, bob = driver("en-US"), driver("zh-CN")
    try:
        def comparison(d):
            return d.find_element(By.ID, "judge").get_attribute("data-comparison")

        def wait_new(d, old):
            WebDriverWait(d, 20).until(lambda _: comparison(d) not in ("", old) or not d.find_element(By.ID, "finished").get_attribute("hidden"))
            return comparison(d)

        alice.get(server.links["alice"])
        first = wait_new(alice, None)
        check(bool(first), "the judging page shows a comparison")
        check(alice.find_element(By.CSS_SELECTOR, "[data-i18n=title]").text == "Which answer is better?", "English for an English browser")
        alice.save_screenshot(os.path.join(artifacts, "review-judge-en.png"))

        bob_votes = []

        def bob_votes_meanwhile():
            bob.get(server.links["bob"])
            current = wait_new(bob, None)
            for key in ["1", "2", "3", "4", "2", "1"]:
                bob.find_element(By.TAG_NAME, "body").send_keys(key)
                current = wait_new(bob, current)
                bob_votes.append(current)

        t = threading.Thread(target=bob_votes_meanwhile)
        t.start()
        # clicks, then keys
        current = first
        for verdict in ["left", "right", "tie"]:
            alice.find_element(By.CSS_SELECTOR, f"[data-verdict={verdict}]").click()
            current = wait_new(alice, current)
        alice.find_element(By.ID, "comment").send_keys("节奏更好 <b>x</b>")
        alice.find_element(By.CSS_SELECTOR, "[data-verdict=both_bad]").click()
        current = wait_new(alice, current)
        for key in [Keys.ARROW_LEFT, Keys.ARROW_RIGHT, "5"]:
            alice.find_element(By.TAG_NAME, "body").send_keys(key)
            current = wait_new(alice, current)
        progress = alice.find_element(By.ID, "progress").text
        check(progress.startswith("7 of "), f"progress after 7 votes: {progress!r}")
        alice.refresh()
        after = wait_new(alice, None)
        check(after == current and alice.find_element(By.ID, "progress").text == progress, "a reload continues where the reviewer was")
        t.join(timeout=120)
        check(len(bob_votes) == 6, "a second reviewer voted at the same time (6 votes by keys)")
        check(bob.find_element(By.CSS_SELECTOR, "[data-i18n=title]").text == "哪个回答更好？", "Chinese for a Chinese browser")
        bob.save_screenshot(os.path.join(artifacts, "review-judge-zh.png"))
        alice.find_element(By.ID, "lang").click()
        check(alice.find_element(By.CSS_SELECTOR, "[data-i18n=v-left]").text == "左边更好", "the language switch shows Chinese")

        # a <script> answer is text: find the comparison that shows it
        seen_script = seen_chinese = False
        prompt = alice.find_element(By.ID, "prompt-text").text
        check(re.search(r"<i>\d+</i>", prompt) is not None, f"HTML in a prompt is shown as text: {prompt!r}")
        for _ in range(40):
            texts = [alice.find_element(By.ID, i).text for i in ("left-text", "right-text")]
            seen_chinese = seen_chinese or any("床前明月光" in x and "\n" in x for x in texts)
            if any("<script>" in x for x in texts):
                seen_script = True
                html = alice.find_element(By.ID, "left-text").get_attribute("innerHTML") + alice.find_element(By.ID, "right-text").get_attribute("innerHTML")
                check("&lt;script&gt;" in html and alice.title != "pwned", "a <script> answer is shown as text and never runs")
                alice.save_screenshot(os.path.join(artifacts, "review-script-answer.png"))
                break
            alice.find_element(By.TAG_NAME, "body").send_keys("3")
            current = wait_new(alice, current)
        check(seen_script, "the <script> answer came up")
        check(seen_chinese, "Chinese answers are shown with their line breaks")

        alice.set_window_size(390, 844)
        left, right = alice.find_element(By.ID, "left-text").rect, alice.find_element(By.ID, "right-text").rect
        check(right["y"] > left["y"] + left["height"] - 1 and abs(right["x"] - left["x"]) < 2, "on a phone-sized window the answers are stacked")
        alice.save_screenshot(os.path.join(artifacts, "review-phone.png"))
        alice.set_window_size(1280, 1000)
        alice.get(server.admin)
        check(len(alice.find_elements(By.CSS_SELECTOR, "svg.chart circle")) == 3, "the results page charts three ratings")
        alice.save_screenshot(os.path.join(artifacts, "review-results.png"))
    finally:
        alice.quit()
        bob.quit()


def voters(server, names, seconds, acknowledged, stop=None):
    """Each reviewer votes as fast as the server answers; acknowledged (name, comparison) pairs are recorded."""
    links = {}
    for name in names:
        code, body = request(server.url + "/api/reviewers", "POST", {"name": name}, {"Authorization": f"Bearer {server.key}"})
        links[name] = body["token"]

    def run(name):
        token = links[name]
        page = urllib.request.urlopen(f"{server.url}/r/{token}", timeout=30).read().decode()
        csrf = re.search(r'data-csrf="([0-9a-f]+)"', page).group(1)
        code, state = request(f"{server.url}/api/next?token={token}")
        end = time.time() + seconds
        while time.time() < end and state.get("comparison") and not (stop and stop.is_set()):
            cid = state["comparison"]["id"]
            try:
                code, state = request(server.url + "/api/vote", "POST", {"token": token, "comparison": cid, "verdict": ["left", "right", "tie"][cid % 3]},
                                      {"X-CSRF-Token": csrf})
            except Exception:
                return
            if code != 200:
                return
            acknowledged.append((name, cid))

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    return threads


def stored(database, study):
    with sqlite3.connect(database) as db:
        return set(db.execute("SELECT r.name, v.comparison_id FROM vote v JOIN reviewer r ON r.id = v.reviewer_id JOIN study s ON s.id = r.study_id "
                              "WHERE s.name = ?", (study,)).fetchall())


def judge_check(quill, workdir, database):
    make_study(quill, workdir, database, "judged", 3)
    serve = subprocess.Popen([quill, "serve", "--port", "0", "--model-name", "smollm2", "--log-level", "warning"], stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in serve.stderr:
            if m := re.search(r"on (http://\S+) ", line):
                url = m.group(1)
                break
        threading.Thread(target=serve.stderr.read, daemon=True).start()
        for _ in range(300):
            try:
                if request(url + "/health")[0] == 200:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        out = subprocess.run([quill, "review", "judge", "judged", "--database", database, "--judge-url", url, "--judge-model", "smollm2",
                              "--max-tokens", "48"], capture_output=True, text=True)
        check(out.returncode == 0, f"quill review judge against quill serve: {out.stdout.strip() or out.stderr.strip()[-300:]}")
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    votes = [json.loads(line) for line in subprocess.run([quill, "review", "export", "judged", "--database", database, "--jsonl", "-"],
                                                         capture_output=True, text=True).stdout.splitlines()]
    check(len(votes) == 9 and all(v["reviewer_kind"] == "judge" and v["reviewer"] == "judge: smollm2" for v in votes),
          f"the judge voted once on each of the 9 comparisons ({len(votes)} votes, as shown / swapped in each comment)")
    results = json.loads(subprocess.run([quill, "review", "results", "judged", "--database", database, "--json", "--bootstrap", "50"],
                                        capture_output=True, text=True).stdout)
    check(results["judge"]["votes"] + results["judge"]["skipped"] == 9 and results["human"]["votes"] == 0,
          "judge votes are reported apart from people's")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quill", default=".build/release/quill")
    ap.add_argument("--load-seconds", type=float, default=60)
    ap.add_argument("--artifacts", default=os.path.join(tempfile.gettempdir(), "quill-review-artifacts"))
    ap.add_argument("--skip-browser", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="quill-review-check-")
    database = os.path.join(workdir, "review.sqlite")
    make_study(args.quill, workdir, database, "browser", 30)
    make_study(args.quill, workdir, database, "load", 2000)

    if not args.skip_browser:
        server = Server(args.quill, database, "browser", ["alice", "bob"])
        try:
            browser_check(server, args.artifacts)
        finally:
            server.stop()
        print(f"screenshots in {args.artifacts}")

    server = Server(args.quill, database, "load")
    acknowledged = []
    names = [f"load-{i}" for i in range(8)]
    for t in voters(server, names, args.load_seconds, acknowledged):
        t.join()
    server.stop()
    in_db = stored(database, "load")
    check(len(acknowledged) > 0 and set(acknowledged) == in_db and len(in_db) == len(acknowledged),
          f"8 reviewers for {args.load_seconds:.0f} s: {len(acknowledged)} votes acknowledged, {len(in_db)} in SQLite")

    server = Server(args.quill, database, "load")
    killed = []
    stop = threading.Event()
    threads = voters(server, [f"kill-{i}" for i in range(8)], 60, killed, stop)
    time.sleep(3)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    stop.set()
    for t in threads:
        t.join()
    in_db = stored(database, "load")
    lost = [v for v in killed if v not in in_db]
    check(len(killed) > 0 and not lost, f"SIGKILL while voting: {len(killed)} votes acknowledged, {len(lost)} lost")
    server = Server(args.quill, database, "load")
    code, _ = request(server.url + "/health")
    code_results, results = request(server.url + "/api/results", headers={"Authorization": f"Bearer {server.key}"})
    server.stop()
    check(code == 200 and code_results == 200 and results["human"]["votes"] >= len(killed), "the study opens again after SIGKILL")

    judge_check(args.quill, workdir, database)

    if FAILED:
        print(f"{len(FAILED)} checks failed")
        sys.exit(1)
    print("all review checks passed")


if __name__ == "__main__":
    main()
