import Dispatch
import Foundation

/// Trains a byte-level BPE vocabulary from text, the way Hugging Face's `BpeTrainer` does:
/// count pre-tokenized words, start from the 256 byte symbols, then repeatedly merge the most
/// frequent adjacent pair (ties go to the pair of smaller ids) until the vocabulary is full.
///
/// ```swift
/// var trainer = BPETrainer(vocabularySize: 8000)
/// trainer.specialTokens = ["<|endoftext|>"]
/// let tokenizer = try trainer.train(lines)
/// try tokenizer.save(to: URL(filePath: "tokenizer.json"))
/// ```
public struct BPETrainer: Sendable {
    public var vocabularySize: Int
    /// Pairs seen fewer times than this are never merged.
    public var minFrequency = 2
    /// Added first, with ids 0, 1, ...; matched whole in text and never split.
    public var specialTokens: [String] = []
    /// Any byte-level pre-tokenizer; GPT-2's by default.
    public var preTokenizer: PreTokenizer = .byteLevel(addPrefixSpace: false, useRegex: true)
    public var normalizer: Normalizer? = nil
    /// Called now and then with (merges done, merges wanted).
    public var progress: (@Sendable (Int, Int) -> Void)? = nil
    /// Threads that count words (default: every core).
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init(vocabularySize: Int) { self.vocabularySize = vocabularySize }

    public func train(_ texts: [String]) throws(TokenizerError) -> Tokenizer {
        let alphabetSize = 256 + specialTokens.count
        guard vocabularySize >= alphabetSize else {
            throw .malformed(source: "BPETrainer", at: "vocabularySize",
                             problem: "\(vocabularySize) is smaller than the 256 byte symbols plus \(specialTokens.count) special tokens")
        }
        let counts = countWords(texts)

        // Vocabulary: special tokens, then the byte alphabet in scalar order.
        var tokens: [String] = specialTokens
        var ids: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() { ids[t] = Int32(i) }
        var byteId = [Int32](repeating: 0, count: 256)
        for (byte, scalar) in ByteLevelAlphabet.byteToScalar.enumerated().sorted(by: { $0.1.value < $1.1.value }) {
            let s = String(Character(scalar))
            if let existing = ids[s] { byteId[byte] = existing; continue }
            byteId[byte] = Int32(tokens.count); ids[s] = Int32(tokens.count); tokens.append(s)
        }

        // Words as symbol ids, with their counts; pair statistics over them.
        var words: [[Int32]] = counts.keys.map { $0.map { byteId[Int($0)] } }
        let wordCounts: [Int] = Array(counts.values)
        var pairCounts: [UInt64: Int] = [:]
        var wordsWithPair: [UInt64: Set<Int32>] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for k in 0..<(word.count - 1) {
                let key = Self.key(word[k], word[k + 1])
                pairCounts[key, default: 0] += wordCounts[w]
                wordsWithPair[key, default: []].insert(Int32(w))
            }
        }
        var heap = BinaryHeap<Candidate>()
        for (key, count) in pairCounts { heap.push(Candidate(count: count, key: key)) }

        var merges: [(String, String)] = []
        let wanted = vocabularySize - tokens.count
        while tokens.count < vocabularySize, var top = heap.pop() {
            let current = pairCounts[top.key] ?? 0
            if current != top.count {             // stale entry: requeue with today's count
                if current > 0 { top.count = current; heap.push(top) }
                continue
            }
            if current < minFrequency { break }
            let (a, b) = Self.split(top.key)
            let merged = tokens[Int(a)] + tokens[Int(b)]
            let newId: Int32
            if let existing = ids[merged] { newId = existing }
            else { newId = Int32(tokens.count); ids[merged] = newId; tokens.append(merged) }
            merges.append((tokens[Int(a)], tokens[Int(b)]))

            var touched: [UInt64: Int] = [:]     // pair → count change
            for w in wordsWithPair[top.key] ?? [] {
                let word = words[Int(w)], n = wordCounts[Int(w)]
                var out: [Int32] = []
                out.reserveCapacity(word.count)
                var k = 0
                while k < word.count {
                    if k + 1 < word.count && word[k] == a && word[k + 1] == b { out.append(newId); k += 2 }
                    else { out.append(word[k]); k += 1 }
                }
                if out.count == word.count { continue }
                for k in 0..<(word.count - 1) { touched[Self.key(word[k], word[k + 1]), default: 0] -= n }
                if out.count > 1 {
                    for k in 0..<(out.count - 1) {
                        let key = Self.key(out[k], out[k + 1])
                        touched[key, default: 0] += n
                        wordsWithPair[key, default: []].insert(w)
                    }
                }
                words[Int(w)] = out
            }
            for (key, change) in touched where change != 0 {
                let updated = (pairCounts[key] ?? 0) + change
                pairCounts[key] = updated > 0 ? updated : nil
                if change > 0 { heap.push(Candidate(count: updated, key: key)) }
            }
            pairCounts[top.key] = nil
            wordsWithPair[top.key] = nil
            if merges.count % 500 == 0 { progress?(merges.count, wanted) }
        }
        progress?(merges.count, wanted)

        var vocab: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = Int32(i) }
        let model = try BPEModel(vocab: vocab, merges: merges, source: "BPETrainer")
        let added = specialTokens.enumerated().map { AddedToken(content: $1, id: Int32($0), special: true) }
        return Tokenizer(normalizer: normalizer, preTokenizer: preTokenizer, model: .bpe(model),
                         postProcessor: .byteLevel(trimOffsets: false), decoder: .byteLevel, addedTokens: added)
    }

    /// Word (pre-token bytes) → occurrences, counted across cores.
    private func countWords(_ texts: [String]) -> [[UInt8]: Int] {
        let workers = max(1, min(threads, texts.count / 64 + 1))
        var partial = [[[UInt8]: Int]](repeating: [:], count: workers)
        partial.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var counts: [[UInt8]: Int] = [:]
                var i = worker
                while i < texts.count {
                    // As HF's trainer: special-token strings in the text are counted as text.
                    var normalized = NormalizedText(Array(texts[i].utf8))
                    normalizer?.apply(&normalized)
                    var pre = PreTokenized(normalized)
                    preTokenizer.apply(&pre)
                    for piece in pre.pieces { counts[Array(pre.text.bytes[piece]), default: 0] += 1 }
                    i += workers
                }
                out[worker] = counts
            }
        }
        var total = partial[0]
        for other in partial.dropFirst() { total.merge(other, uniquingKeysWith: +) }
        return total
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
    @inline(__always) static func split(_ key: UInt64) -> (Int32, Int32) {
        (Int32(truncatingIfNeeded: key >> 32), Int32(truncatingIfNeeded: key))
    }
}

/// A merge candidate. `<` means "merges first": higher count, then the pair of smaller ids
/// (HF's order), so a min-heap pops the best candidate.
struct Candidate: Comparable {
    var count: Int
    var key: UInt64
    static func < (a: Candidate, b: Candidate) -> Bool { a.count != b.count ? a.count > b.count : a.key < b.key }
}
