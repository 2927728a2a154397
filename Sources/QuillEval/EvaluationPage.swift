import Foundation
import QuillData

/// `quill eval --html`: one self-contained page (no scripts, no outside assets) with each model's
/// figures, the comparisons with their intervals, and every document's bits per byte per model
/// as a plot, documents ordered by the first model's figure.
public enum EvaluationPage {
    public static func html(_ report: EvaluationReport) -> String {
        let escape = HTMLText.escape
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        var rows = ""
        for m in report.models {
            if let s = m.summary {
                rows += String(format: "<tr><td>%@</td><td>%d</td><td>%d</td><td><b>%.4f ± %.4f</b></td><td>%.4f ± %.4f</td><td>%.3f ± %.3f</td><td>%.3f ± %.3f</td></tr>\n",
                               escape(m.name), s.documents, s.tokens, s.bitsPerByte.value, s.bitsPerByte.standardError,
                               s.bytePerplexity.value, s.bytePerplexity.standardError, s.wordPerplexity.value, s.wordPerplexity.standardError,
                               s.tokenPerplexity.value, s.tokenPerplexity.standardError)
            }
        }
        let verdicts = report.comparisons.map { "<li>\(escape($0.verdict))</li>" }.joined(separator: "\n")
        var choice = ""
        for m in report.models {
            if let c = m.multipleChoice {
                choice += String(format: "<tr><td>%@</td><td>%d</td><td>%.4f ± %.4f</td><td>%.4f ± %.4f</td></tr>\n", escape(m.name), c.questions,
                                 c.accuracy.value, c.accuracy.standardError, c.normalizedAccuracy.value, c.normalizedAccuracy.standardError)
            }
        }
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>quill eval</title>
        <style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}code{background:#f4f4f4;padding:1px 4px}</style>
        </head><body>
        <h1>quill eval</h1>
        <p>Protocol <code>\(escape(report.evaluationProtocol.name))</code>: \(escape(report.evaluationProtocol.description)).</p>
        <p>Data: \(report.data.map { "<code>\(escape($0.path))</code> (sha256 \($0.sha256.prefix(12))…)" }.joined(separator: ", "))</p>
        <table><tr><th>model</th><th>documents</th><th>tokens</th><th>bits per byte</th><th>byte perplexity</th><th>word perplexity</th><th>token perplexity</th></tr>
        \(rows)</table>
        \(choice.isEmpty ? "" : "<h2>Multiple choice</h2><table><tr><th>model</th><th>questions</th><th>acc</th><th>acc_norm</th></tr>\(choice)</table>")
        \(verdicts.isEmpty ? "" : "<h2>Comparisons</h2><ul>\(verdicts)</ul>")
        <h2>Bits per byte of each document</h2>
        \(plot(report, colors: colors, escape: escape))
        </body></html>
        """
    }

    static func plot(_ report: EvaluationReport, colors: [String], escape: (String) -> String) -> String {
        let series = report.models.compactMap { m in m.documents.map { (m.name, $0.map(\.bitsPerByte)) } }
        guard let first = series.first, !first.1.isEmpty else { return "<p>No documents.</p>" }
        let order = first.1.indices.sorted { first.1[$0] < first.1[$1] }
        let all = series.flatMap(\.1).filter(\.isFinite)
        let low = all.min() ?? 0, high = max(all.max() ?? 1, low + 1e-9)
        let width = 960.0, height = 360.0, left = 50.0, bottom = 30.0
        func x(_ i: Int) -> Double { left + (width - left - 10) * (order.count > 1 ? Double(i) / Double(order.count - 1) : 0.5) }
        func y(_ v: Double) -> Double { 10 + (height - bottom - 10) * (1 - (v - low) / (high - low)) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-size=\"11\">"
        for t in 0...4 {
            let v = low + (high - low) * Double(t) / 4
            svg += String(format: "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"4\" y=\"%.1f\">%.3f</text>", left, width - 10, y(v), y(v), y(v) + 4, v)
        }
        for (k, (name, values)) in series.enumerated() {
            let color = colors[k % colors.count]
            for (i, d) in order.enumerated() where d < values.count && values[d].isFinite {
                svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\" fill-opacity=\"0.7\"/>", x(i), y(values[d]), color)
            }
            svg += "<text x=\"\(Int(left) + 10 + 220 * k)\" y=\"\(Int(height) - 8)\" fill=\"\(color)\">● \(escape(name))</text>"
        }
        return svg + "</svg><p>Documents ordered by the first model's bits per byte; lower is better.</p>"
    }
}
