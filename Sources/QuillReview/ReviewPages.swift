import Foundation
import QuillData

/// The review pages: HTML with every study value escaped, one script and one style sheet
/// served by the binary (no CDN). Answers reach the page as JSON and are set with
/// `textContent`, never as HTML; CSS keeps their line breaks and scrolls long ones.
enum ReviewPages {
    static let escape = HTMLText.escape

    static func page(title: String, body: String, attributes: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <link rel="stylesheet" href="/assets/review.css">
        </head>
        <body \(attributes)>
        \(body)
        <script src="/assets/review.js"></script>
        </body>
        </html>
        """
    }

    static let languageSwitch = #"<button type="button" id="lang" class="lang">中文 / English</button>"#

    static func join(study: String, csrf: String) -> String {
        page(title: "Quill review · \(study)", body: """
            <header><h1><span data-i18n="title">Which answer is better?</span> · \(escape(study))</h1>\(languageSwitch)</header>
            <main class="join">
            <p data-i18n="intro">You will see a prompt and two answers written by different systems, in random order. Choose the better one.</p>
            <p id="continue" hidden><a id="continue-link" href="#" data-i18n="continue">Continue where you were</a></p>
            <form id="join-form">
            <label for="name" data-i18n="name">Your name</label>
            <input id="name" name="name" maxlength="80" required autocomplete="name">
            <button type="submit" id="join" data-i18n="start">Start</button>
            </form>
            <p id="error" class="error" role="alert"></p>
            </main>
            """, attributes: #"data-page="join" data-study="\#(escape(study))" data-csrf="\#(escape(csrf))""#)
    }

    static func judge(study: String, reviewer: Reviewer) -> String {
        page(title: "Quill review · \(study)", body: """
            <header><h1><span data-i18n="title">Which answer is better?</span></h1>
            <span id="progress" class="progress"></span>\(languageSwitch)</header>
            <main id="judge" data-comparison="">
            <section class="prompt"><h2 data-i18n="prompt">Prompt</h2><div id="prompt-text" class="text"></div></section>
            <div class="answers">
            <section class="answer"><h2 data-i18n="left">Left answer</h2><div id="left-text" class="text"></div></section>
            <section class="answer"><h2 data-i18n="right">Right answer</h2><div id="right-text" class="text"></div></section>
            </div>
            <div class="buttons">
            <button type="button" data-verdict="left"><span data-i18n="v-left">Left is better</span> <kbd>1</kbd></button>
            <button type="button" data-verdict="right"><span data-i18n="v-right">Right is better</span> <kbd>2</kbd></button>
            <button type="button" data-verdict="tie"><span data-i18n="v-tie">Tie</span> <kbd>3</kbd></button>
            <button type="button" data-verdict="both_bad"><span data-i18n="v-both_bad">Both bad</span> <kbd>4</kbd></button>
            <button type="button" data-verdict="skip"><span data-i18n="v-skip">Skip</span> <kbd>5</kbd></button>
            </div>
            <label for="comment" data-i18n="comment">Comment (optional)</label>
            <textarea id="comment" maxlength="4000" rows="2"></textarea>
            <p class="keys" data-i18n="keys">Keys: ← or 1 left, → or 2 right, 3 tie, 4 both bad, 5 skip.</p>
            </main>
            <section id="finished" hidden><p data-i18n="done">All done. Thank you!</p></section>
            <p id="error" class="error" role="alert"></p>
            """, attributes: #"data-page="judge" data-study="\#(escape(study))" data-token="\#(escape(reviewer.token))" data-csrf="\#(escape(reviewer.csrf))" data-name="\#(escape(reviewer.name))""#)
    }

    static func message(title: String, text: String) -> String {
        page(title: title, body: "<main><h1>\(escape(title))</h1><p>\(escape(text))</p></main>")
    }

    static func results(study: Study, human: ReviewResults, judge: ReviewResults) -> String {
        func section(_ r: ReviewResults, _ heading: String) -> String {
            guard r.votes > 0 else { return "<section><h2>\(escape(heading))</h2><p>No votes yet · 暂无投票</p></section>" }
            let rows = r.ratings.map { (x) -> String in
                let rank = x.rankRange[0] == x.rankRange[1] ? "\(x.rankRange[0])" : "\(x.rankRange[0])–\(x.rankRange[1])"
                return "<tr><td>\(rank)</td><td>\(escape(x.system))</td><td>\(String(format: "%.1f", x.rating))</td>"
                    + "<td>[\(String(format: "%.1f", x.interval[0])), \(String(format: "%.1f", x.interval[1]))]</td><td>\(x.votes)</td></tr>"
            }.joined(separator: "\n")
            let pairs = r.pairs.map { (p) -> String in
                let n = p.firstWins + p.ties + p.secondWins
                let rate = n == 0 ? "–" : String(format: "%.1f%% [%.1f%%, %.1f%%]", p.firstWinRate * 100, p.firstWinRateInterval[0] * 100, p.firstWinRateInterval[1] * 100)
                return "<tr><td>\(escape(p.first))</td><td>\(escape(p.second))</td><td>\(p.firstWins)</td><td>\(p.ties)</td><td>\(p.secondWins)</td><td>\(rate)</td></tr>"
            }.joined(separator: "\n")
            let lines = r.lines.suffix(2).map { (line) -> String in "<p>\(escape(line))</p>" }.joined()
            return """
                <section><h2>\(escape(heading))</h2>
                <p>\(r.votes) votes, \(r.skipped) skipped. Bradley-Terry ratings: ties count half, 400-point logistic scale, \(escape(r.anchor)); bootstrap 95% intervals (\(r.resamples) resamples).</p>
                \(chart(r))
                <table class="ratings"><tr><th>rank</th><th>system</th><th>rating</th><th>95% CI</th><th>votes</th></tr>
                \(rows)</table>
                <table class="pairs"><tr><th>first</th><th>second</th><th>first wins</th><th>ties</th><th>second wins</th><th>first's win rate (95% CI)</th></tr>
                \(pairs)</table>
                \(lines)
                </section>
                """
        }
        return page(title: "Results · \(study.name)", body: """
            <header><h1>Results · 结果: \(escape(study.name))</h1></header>
            <main class="results">
            <p>\(study.systems.count) systems, \(study.prompts) prompts, \(study.comparisons) comparisons.</p>
            \(section(human, "People · 人工评审"))
            \(section(judge, "Automatic judge · 自动评审"))
            </main>
            """, attributes: #"data-page="results""#)
    }

    /// Ratings as dots on a line with their intervals, one row per system.
    static func chart(_ r: ReviewResults) -> String {
        let finite = r.ratings.flatMap { [$0.rating] + $0.interval }.filter(\.isFinite)
        guard let low = finite.min(), let high = finite.max() else { return "" }
        let pad = max(10, (high - low) * 0.08), lo = low - pad, hi = high + pad
        let width = 640.0, left = 150.0, right = 20.0, row = 34.0
        let height = Double(r.ratings.count) * row + 40
        func x(_ v: Double) -> Double { left + (min(max(v, lo), hi) - lo) / (hi - lo) * (width - left - right) }
        var svg = ##"<svg class="chart" role="img" aria-label="ratings with 95% intervals" viewBox="0 0 \##(Int(width)) \##(Int(height))" width="\##(Int(width))" height="\##(Int(height))" xmlns="http://www.w3.org/2000/svg">"##
        for (i, rating) in r.ratings.enumerated() {
            let y = 20 + Double(i) * row
            svg += ##"<text x="\##(Int(left - 10))" y="\##(y + 5)" text-anchor="end">\##(escape(rating.system))</text>"##
            svg += ##"<line x1="\##(x(rating.interval[0]))" y1="\##(y)" x2="\##(x(rating.interval[1]))" y2="\##(y)" stroke="#4a6fa5" stroke-width="3"/>"##
            svg += ##"<circle cx="\##(x(rating.rating))" cy="\##(y)" r="6" fill="#1b2a3a"/>"##
            svg += ##"<text x="\##(x(rating.rating))" y="\##(y - 10)" text-anchor="middle" font-size="11">\##(String(format: "%.0f", rating.rating))</text>"##
        }
        let axis = 20 + Double(r.ratings.count) * row
        svg += ##"<line x1="\##(left)" y1="\##(axis - 10)" x2="\##(width - right)" y2="\##(axis - 10)" stroke="#999"/>"##
        for tick in stride(from: (lo / 50).rounded(.up) * 50, through: hi, by: max(50, ((hi - lo) / 6 / 50).rounded(.up) * 50)) {
            svg += ##"<text x="\##(x(tick))" y="\##(axis + 6)" text-anchor="middle" font-size="11">\##(Int(tick))</text>"##
        }
        return svg + "</svg>"
    }

    static let css = """
    * { box-sizing: border-box }
    body { margin: 0; font: 16px/1.5 system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; color: #1b1b1b; background: #f6f7f9 }
    header { display: flex; gap: 16px; align-items: center; padding: 10px 20px; background: #1b2a3a; color: #fff }
    header h1 { font-size: 18px; margin: 0; flex: 1 }
    .lang { background: transparent; color: #fff; border: 1px solid #fff8; border-radius: 4px; padding: 4px 10px; cursor: pointer }
    main { max-width: 1200px; margin: 0 auto; padding: 16px 20px }
    h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .04em; color: #556; margin: 0 0 6px }
    .text { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; border: 1px solid #d8dce2; border-radius: 6px; padding: 12px;
            max-height: 55vh; overflow-y: auto }
    .prompt .text { max-height: 25vh; background: #eef2f7 }
    .answers { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin: 16px 0 }
    @media (max-width: 760px) { .answers { grid-template-columns: 1fr } }
    .buttons { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 12px }
    .buttons button, #join { font-size: 16px; padding: 8px 14px; border-radius: 6px; border: 1px solid #4a6fa5; background: #fff; cursor: pointer }
    .buttons button:hover { background: #e8eef7 }
    button:disabled { opacity: .5 }
    kbd { font-size: 12px; border: 1px solid #aab; border-radius: 3px; padding: 0 4px; color: #556 }
    textarea, input { width: 100%; font: inherit; padding: 6px; border: 1px solid #c8ccd2; border-radius: 4px; margin: 4px 0 10px }
    .keys { color: #667; font-size: 13px }
    .error { color: #b00020 }
    table { border-collapse: collapse; margin: 12px 0; background: #fff }
    th, td { border: 1px solid #d8dce2; padding: 4px 10px; text-align: left }
    .chart text { font-family: inherit; font-size: 13px }
    """

    static let js = #"""
    "use strict";
    const T = {
      en: { title: "Which answer is better?", intro: "You will see a prompt and two answers written by different systems, in random order. Choose the better one.",
            name: "Your name", start: "Start", continue: "Continue where you were", prompt: "Prompt", left: "Left answer", right: "Right answer",
            "v-left": "Left is better", "v-right": "Right is better", "v-tie": "Tie", "v-both_bad": "Both bad", "v-skip": "Skip",
            comment: "Comment (optional)", keys: "Keys: ← or 1 left, → or 2 right, 3 tie, 4 both bad, 5 skip.", done: "All done. Thank you!",
            progress: "{done} of {total}" },
      zh: { title: "哪个回答更好？", intro: "你会看到一个提示和两个不同系统写的回答，左右顺序随机。请选出更好的一个。",
            name: "你的名字", start: "开始", continue: "从上次的位置继续", prompt: "提示", left: "左边的回答", right: "右边的回答",
            "v-left": "左边更好", "v-right": "右边更好", "v-tie": "一样好", "v-both_bad": "都不好", "v-skip": "跳过",
            comment: "备注（可选）", keys: "快捷键：← 或 1 左边，→ 或 2 右边，3 一样好，4 都不好，5 跳过。", done: "全部完成，谢谢！",
            progress: "第 {done} / {total} 个" }
    };
    const body = document.body;
    let lang = localStorage.getItem("quill-review-lang") || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
    let progress = null;
    function t(key) { return (T[lang] && T[lang][key]) || T.en[key] || key; }
    function applyLanguage() {
      document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
      document.querySelectorAll("[data-i18n]").forEach(e => { e.textContent = t(e.dataset.i18n); });
      showProgress();
    }
    function showProgress() {
      const el = document.getElementById("progress");
      if (el && progress) el.textContent = t("progress").replace("{done}", progress.done).replace("{total}", progress.total);
    }
    function showError(message) { document.getElementById("error").textContent = message || ""; }
    async function call(path, options) {
      const response = await fetch(path, options);
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error((data.error && data.error.message) || ("HTTP " + response.status));
      return data;
    }
    document.getElementById("lang").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      localStorage.setItem("quill-review-lang", lang);
      applyLanguage();
    });

    if (body.dataset.page === "join") {
      const key = "quill-review-token:" + body.dataset.study;
      const saved = localStorage.getItem(key);
      if (saved) {
        document.getElementById("continue").hidden = false;
        document.getElementById("continue-link").href = "/r/" + encodeURIComponent(saved);
      }
      document.getElementById("join-form").addEventListener("submit", async event => {
        event.preventDefault();
        try {
          const data = await call("/api/join", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": body.dataset.csrf },
                                                 body: JSON.stringify({ name: document.getElementById("name").value }) });
          localStorage.setItem(key, data.token);
          location.href = data.url;
        } catch (e) { showError(e.message); }
      });
    }

    if (body.dataset.page === "judge") {
      localStorage.setItem("quill-review-token:" + body.dataset.study, body.dataset.token);
      const main = document.getElementById("judge");
      const buttons = Array.from(document.querySelectorAll("[data-verdict]"));
      let current = null, busy = false;
      function show(data) {
        progress = { done: data.done, total: data.total };
        showProgress();
        current = data.comparison;
        if (!current) {
          main.hidden = true;
          main.dataset.comparison = "";
          document.getElementById("finished").hidden = false;
          return;
        }
        document.getElementById("prompt-text").textContent = current.prompt;
        document.getElementById("left-text").textContent = current.left;
        document.getElementById("right-text").textContent = current.right;
        document.getElementById("left-text").scrollTop = 0;
        document.getElementById("right-text").scrollTop = 0;
        document.getElementById("comment").value = "";
        main.dataset.comparison = String(current.id);
      }
      async function vote(verdict) {
        if (!current || busy) return;
        busy = true;
        buttons.forEach(b => { b.disabled = true; });
        try {
          show(await call("/api/vote", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": body.dataset.csrf },
                                         body: JSON.stringify({ token: body.dataset.token, comparison: current.id, verdict: verdict,
                                                                comment: document.getElementById("comment").value }) }));
          showError("");
        } catch (e) {
          showError(e.message);
          try { show(await call("/api/next?token=" + encodeURIComponent(body.dataset.token))); } catch (_) {}
        } finally {
          busy = false;
          buttons.forEach(b => { b.disabled = false; });
        }
      }
      buttons.forEach(b => b.addEventListener("click", () => vote(b.dataset.verdict)));
      document.addEventListener("keydown", event => {
        if (event.target && (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT")) return;
        const verdict = { ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right", "3": "tie", "4": "both_bad", "5": "skip" }[event.key];
        if (verdict) { event.preventDefault(); vote(verdict); }
      });
      call("/api/next?token=" + encodeURIComponent(body.dataset.token)).then(show).catch(e => showError(e.message));
    }
    applyLanguage();
    """#

    static let assets: [String: (String, String)] = [
        "review.js": ("application/javascript; charset=utf-8", js),
        "review.css": ("text/css; charset=utf-8", css),
    ]
}
