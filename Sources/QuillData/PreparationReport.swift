import Foundation

extension CorpusPreparation.Report {
    /// `report.json` and `report.html` in `folder`.
    public func write(to folder: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: folder).appendingPathComponent("report.json"))
        try Data(html.utf8).write(to: URL(fileURLWithPath: folder).appendingPathComponent("report.html"))
    }

    /// The report as one self-contained page (no scripts, no outside assets): totals, splits,
    /// encodings and languages, and every drop reason with its examples.
    public var html: String {
        let escape = HTMLText.escape
        func number(_ n: Int) -> String {
            let digits = String(n)
            var out = ""
            for (i, d) in digits.enumerated() {
                if i > 0 && (digits.count - i) % 3 == 0 && d != "-" { out += "," }
                out.append(d)
            }
            return out
        }
        func percent(_ part: Int, _ whole: Int) -> String { whole == 0 ? "" : String(format: "%.1f%%", 100 * Double(part) / Double(whole)) }
        func table(_ header: [String], _ rows: [[String]]) -> String {
            "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
                + rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined(separator: "\n") + "</table>\n"
        }

        var body = "<h1>Corpus preparation report</h1>\n"
        body += String(format: "<p>%@ files read in %.1f s.</p>\n", number(files), seconds)
        var totals = [["documents", number(documentsIn), number(documentsKept), percent(documentsKept, documentsIn)],
                      ["characters", number(charactersIn), number(charactersOut), percent(charactersOut, charactersIn)]]
        if let tokensIn { totals.append(["tokens", number(tokensIn), number(tokensOut ?? 0), percent(tokensOut ?? 0, tokensIn)]) }
        body += "<h2>In and out</h2>\n" + table(["", "in", "kept", "kept share"], totals)
        body += "<p>In = kept + dropped: \(number(documentsIn)) = \(number(documentsKept)) + \(number(documentsDropped))"
            + (documentsIn == documentsKept + documentsDropped ? "" : " <strong>(does not add up)</strong>") + ".</p>\n"
        body += "<h2>Splits</h2>\n" + table(["split", "documents"], ["train", "validation", "test"].map { [$0, number(splits[$0] ?? 0)] })
        body += "<h2>Dropped, by reason</h2>\n"
        if dropped.isEmpty { body += "<p>Nothing was dropped.</p>\n" }
        for (reason, r) in dropped.sorted(by: { $0.value.count > $1.value.count }) {
            body += "<h3>\(escape(reason)): \(number(r.count)) (\(percent(r.count, documentsIn)))</h3>\n"
            body += table(["source", "why", "text"], r.examples.map {
                ["<code>\(escape(($0.source as NSString).lastPathComponent))#\($0.position)</code>", escape($0.detail),
                 "<span class=\"excerpt\">\(escape($0.excerpt))</span>"]
            })
        }
        body += "<h2>Encodings found (files)</h2>\n"
            + table(["encoding", "files"], encodings.sorted { $0.key < $1.key }.map { [escape($0.key), number($0.value)] })
        if invalidBytes > 0 { body += "<p>\(number(invalidBytes)) undecodable bytes were replaced with U+FFFD.</p>\n" }
        body += "<h2>Languages kept</h2>\n"
            + table(["language", "documents"], languages.sorted { $0.value > $1.value }.map { [escape($0.key), number($0.value)] })
        body += "<p>Repeated boilerplate lines removed: \(number(repeatedLinesRemoved)).</p>\n"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Quill: corpus preparation report</title>
        <style>
        body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222 }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em } th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top }
        td:nth-child(n+2) { font-variant-numeric: tabular-nums } th { background: #f3f3f3; text-align: left }
        .excerpt { white-space: pre-wrap; font-size: 0.9em; color: #555 }
        </style></head><body>
        \(body)</body></html>

        """
    }
}
