import Foundation
import QuillTokenizers

/// Tokens a model reads in one pass and the next tokens it is scored on there.
public struct ScoringWindow: Sendable, Equatable {
    /// The model's input [T].
    public var input: [Int32]
    /// [T]: position p is scored on predicting targets[p]; -1 where nothing is scored.
    public var targets: [Int32]
    public var scoredCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }

    public init(input: [Int32], targets: [Int32]) {
        precondition(input.count == targets.count, "a window's input and targets have the same length")
        self.input = input
        self.targets = targets
    }

    /// `context` then `continuation`, the continuation scored: input = (context + continuation)
    /// without its last token, cut from the left to at most `length` tokens.
    public init(context: [Int32], continuation: [Int32], length: Int) {
        let all = context + continuation
        let input = Array(all.dropLast().suffix(length))
        let scored = min(continuation.count, input.count)
        self.init(input: input, targets: [Int32](repeating: -1, count: input.count - scored) + continuation.suffix(scored))
    }
}

/// How lm-evaluation-harness turns text into windows (`lm_eval.utils.get_rolling_token_windows`
/// with `context_len` 1, then `make_disjoint_window`; `TemplateLM.loglikelihood` and
/// `_encode_pair`), so Quill's figures equal its figures on the same model.
public enum HarnessWindows {
    /// `loglikelihood_rolling`: every token of `tokens` scored exactly once. The first window
    /// reads `prefix` then the first length-1 tokens and scores the first `length`; each next
    /// window scores the next `length` tokens (fewer at the end) from an input of up to `length`
    /// tokens ending just before its last target, so the last window keeps a full context.
    public static func rolling(_ tokens: [Int32], prefix: Int32, length: Int) -> [ScoringWindow] {
        precondition(length >= 1)
        guard !tokens.isEmpty else { return [] }
        let first = min(length, tokens.count)
        var windows = [ScoringWindow(input: [prefix] + tokens[..<(first - 1)], targets: Array(tokens[..<first]))]
        var predicted = first
        while predicted < tokens.count {
            let count = min(tokens.count - predicted, length)
            let end = predicted + count
            let input = Array(tokens[max(0, end - length - 1)..<(end - 1)])
            windows.append(ScoringWindow(input: input, targets: [Int32](repeating: -1, count: input.count - count) + tokens[(end - count)..<end]))
            predicted = end
        }
        return windows
    }

    /// `loglikelihood(context, continuation)` tokenized as the harness does for a causal model:
    /// whitespace that ends the context moves to the start of the continuation; the pair is
    /// encoded whole and the context's own tokens cut off the front; an empty context becomes
    /// `prefix` (unless the continuation already starts with it). No special tokens are added.
    public static func pair(context: String, continuation: String, tokenizer: Tokenizer, prefix: Int32) -> (context: [Int32], continuation: [Int32]) {
        if context.isEmpty {
            let ids = tokenizer.encode(continuation, addSpecialTokens: false)
            guard let first = ids.first else { return ([prefix], []) }
            return first == prefix ? ([first], Array(ids.dropFirst())) : ([prefix], ids)
        }
        var context = context, continuation = continuation
        let trailing = context.unicodeScalars.reversed().prefix { PythonText.isSpace($0) }.count
        if trailing > 0 {
            let scalars = Array(context.unicodeScalars)
            continuation = String(String.UnicodeScalarView(scalars.suffix(trailing))) + continuation
            context = String(String.UnicodeScalarView(scalars.dropLast(trailing)))
        }
        let whole = tokenizer.encode(context + continuation, addSpecialTokens: false)
        let contextIds = tokenizer.encode(context, addSpecialTokens: false)
        return (contextIds, Array(whole.dropFirst(min(contextIds.count, whole.count))))
    }
}

/// Python's notions of text that lm-evaluation-harness's figures depend on.
public enum PythonText {
    /// `str.isspace()`, which is what `\s` and `str.rstrip()` match in Python 3.
    public static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    /// `len(re.split(r"\s+", text))`: lm-evaluation-harness's word count (one more than the
    /// runs of whitespace; leading or trailing whitespace adds an empty word, as there).
    public static func wordCount(_ text: String) -> Int {
        var runs = 0, inSpace = false
        for s in text.unicodeScalars {
            let space = isSpace(s)
            if space && !inSpace { runs += 1 }
            inSpace = space
        }
        return runs + 1
    }

    /// `len(text)`: code points.
    public static func length(_ text: String) -> Int { text.unicodeScalars.count }
}
