import Foundation
import QuillFormats
import QuillModels

/// llama.cpp's file of a reference model's log-probabilities, as `llama-perplexity
/// --kl-divergence-base FILE` writes it and `--kl-divergence` reads it, so that either tool reads
/// the other's files. Little-endian throughout:
///
///     "_logits_"                          8 bytes
///     context, vocabulary, chunks         3 × int32
///     tokens                              chunks × context × int32 (the text's tokens, BOS not substituted)
///     per chunk, per scored position      context − 1 − context/2 rows of `rowWidth` uint16:
///         scale, min log p                2 × float32 (4 uint16)
///         q[vocabulary]                   log p(i) ≈ scale × q[i] + min log p
///         padding                         to an even count of uint16
///
/// The scored positions are llama-perplexity's: the second half of each chunk (see `Perplexity`).
/// Each row keeps log-probabilities within 16 nats of the best to 16 bits; those below are 0.
public enum LogProbabilityFile {
    static let magic = Array("_logits_".utf8)
    static let headerBytes = 8 + 3 * 4

    /// uint16 per row: two floats, the vocabulary, padded to even.
    public static func rowWidth(vocabulary: Int) -> Int { 2 * ((vocabulary + 1) / 2) + 4 }

    /// Scored rows per chunk of `context` tokens.
    public static func rowsPerChunk(context: Int) -> Int { context - 1 - context / 2 }

    public struct Failure: Error, CustomStringConvertible {
        public var file: String
        public var problem: String
        public var description: String { "\(file): \(problem)" }
    }

    /// Quantizes one row of logits to the file's 16-bit form (`row` holds `rowWidth` uint16)
    /// exactly as llama.cpp does, in single precision.
    public static func encode(_ logits: UnsafeBufferPointer<Float>, into row: UnsafeMutableBufferPointer<UInt16>) {
        var maxLogit = logits[0], minLogit = logits[0]
        for l in logits { maxLogit = max(maxLogit, l); minLogit = min(minLogit, l) }
        minLogit = max(minLogit, maxLogit - 16)
        var sumExp = 0.0
        for l in logits { sumExp += Double(expf(l - maxLogit)) }
        let logSumExp = Float(log(sumExp))
        let scale = (maxLogit - minLogit) / 65535
        store(scale, at: 0, in: row)
        store(minLogit - maxLogit - logSumExp, at: 2, in: row)   // the log-probability that q = 0 stands for
        let inverse = scale != 0 ? 1 / scale : 0
        for (i, l) in logits.enumerated() {
            row[4 + i] = l > minLogit ? UInt16(min(65535, (inverse * (l - minLogit)).rounded(.toNearestOrEven))) : 0
        }
        for i in (4 + logits.count)..<row.count { row[i] = 0 }
    }

    /// The log-probability of token `index` in an encoded row.
    public static func logProbability(_ row: UnsafeBufferPointer<UInt16>, at index: Int) -> Float {
        let (scale, minimum) = header(of: row)
        return scale * Float(row[4 + index]) + minimum
    }

    static func header(of row: UnsafeBufferPointer<UInt16>) -> (scale: Float, minLogProbability: Float) {
        (Float(bitPattern: UInt32(row[0]) | UInt32(row[1]) << 16), Float(bitPattern: UInt32(row[2]) | UInt32(row[3]) << 16))
    }

    static func store(_ value: Float, at offset: Int, in row: UnsafeMutableBufferPointer<UInt16>) {
        row[offset] = UInt16(truncatingIfNeeded: value.bitPattern)
        row[offset + 1] = UInt16(truncatingIfNeeded: value.bitPattern >> 16)
    }

    /// Writes the header, then one chunk's rows at a time.
    public struct Writer {
        let handle: FileHandle
        let vocabulary: Int
        var row: [UInt16]

        public init(handle: FileHandle, context: Int, vocabulary: Int, chunks: Int, tokens: ArraySlice<Int32>) throws {
            precondition(tokens.count == chunks * context)
            self.handle = handle
            self.vocabulary = vocabulary
            row = [UInt16](repeating: 0, count: rowWidth(vocabulary: vocabulary))
            var header = Data(magic)
            for value in [Int32(context), Int32(vocabulary), Int32(chunks)] { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
            tokens.withUnsafeBytes { header.append(contentsOf: $0) }
            try handle.write(contentsOf: header)
        }

        /// Encodes and writes `logits` [n, vocabulary], the scored rows of one chunk.
        public mutating func append(_ logits: UnsafeBufferPointer<Float>) throws {
            let rows = logits.count / vocabulary
            var bytes = Data(capacity: rows * row.count * 2)
            for r in 0..<rows {
                let logitRow = UnsafeBufferPointer(rebasing: logits[(r * vocabulary)..<((r + 1) * vocabulary)])
                row.withUnsafeMutableBufferPointer { encode(logitRow, into: $0) }
                row.withUnsafeBytes { bytes.append(contentsOf: $0) }
            }
            try handle.write(contentsOf: bytes)
        }
    }

    /// Reads a file's header and tokens whole, its rows a chunk at a time. The header is checked
    /// against the file's length before anything is allocated from it.
    public final class Reader {
        public let path: String
        public let context: Int, vocabulary: Int, chunks: Int
        public let tokens: [Int32]
        let handle: FileHandle

        public init(path: String) throws {
            self.path = path
            func fail(_ problem: String) -> Failure { Failure(file: path, problem: problem) }
            guard let handle = FileHandle(forReadingAtPath: path) else { throw fail("cannot open the file") }
            self.handle = handle
            let length = try handle.seekToEnd()
            try handle.seek(toOffset: 0)
            let header = try handle.read(upToCount: headerBytes) ?? Data()
            guard header.count == headerBytes, Array(header.prefix(8)) == magic else {
                throw fail("not a file of log-probabilities (llama-perplexity --kl-divergence-base writes them; it starts with \"_logits_\")")
            }
            func int32(at offset: Int) -> Int {
                Int(Int32(littleEndian: header.subdata(in: offset..<(offset + 4)).withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
            }
            let (context, vocabulary, chunks) = (int32(at: 8), int32(at: 12), int32(at: 16))
            guard context >= 4, vocabulary >= 1, chunks >= 1 else {
                throw fail("the header says context \(context), vocabulary \(vocabulary), chunks \(chunks): each must be positive (context at least 4)")
            }
            let expected = Self.product(4, chunks, context).flatMap { tokenBytes in
                Self.product(2, chunks, rowsPerChunk(context: context), rowWidth(vocabulary: vocabulary)).map { headerBytes + tokenBytes + $0 }
            } ?? Int.max
            guard UInt64(expected) == length else {
                throw fail("the header (context \(context), vocabulary \(vocabulary), \(chunks) chunks) needs \(expected) bytes; the file has \(length)"
                           + (UInt64(expected) > length ? " (truncated?)" : ""))
            }
            let tokenBytes = try handle.read(upToCount: 4 * chunks * context) ?? Data()
            let tokens = tokenBytes.withUnsafeBytes { raw in
                (0..<(chunks * context)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            }
            if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= vocabulary }) {
                throw fail("token \(tokens[bad]) at position \(bad) is outside the vocabulary of \(vocabulary)")
            }
            (self.context, self.vocabulary, self.chunks, self.tokens) = (context, vocabulary, chunks, tokens)
        }

        deinit { try? handle.close() }

        /// The product, or nil where it overflows (a hostile header).
        static func product(_ factors: Int...) -> Int? {
            var result = 1
            for factor in factors {
                let (value, overflow) = result.multipliedReportingOverflow(by: factor)
                if overflow { return nil }
                result = value
            }
            return result
        }

        /// Refuses a model whose vocabulary is not the file's.
        public func requireVocabulary(_ size: Int) throws {
            guard vocabulary == size else { throw Failure(file: path, problem: "holds a vocabulary of \(vocabulary) tokens; the model has \(size)") }
        }

        /// The next chunk's rows: rowsPerChunk × rowWidth uint16.
        public func nextChunk() throws -> [UInt16] {
            let count = rowsPerChunk(context: context) * rowWidth(vocabulary: vocabulary)
            let data = try handle.read(upToCount: 2 * count) ?? Data()
            guard data.count == 2 * count else { throw Failure(file: path, problem: "ends inside a chunk") }
            var rows = [UInt16](repeating: 0, count: count)
            rows.withUnsafeMutableBytes { _ = data.copyBytes(to: $0) }
            #if _endian(big)
            for i in rows.indices { rows[i] = UInt16(littleEndian: rows[i]) }
            #endif
            return rows
        }
    }
}

/// Kullback-Leibler divergence of a model's next-token distributions from a reference's, and
/// the perplexity and top-token statistics beside it, as `llama-perplexity --kl-divergence`
/// computes them (single-precision per token, double-precision sums), so the two tools' figures
/// for the same pair of models can be set side by side.
public struct KLDivergence: Sendable {
    public var sumNLL = 0.0, sumNLL2 = 0.0
    public var sumBaseNLL = 0.0, sumBaseNLL2 = 0.0, sumNLLBaseNLL = 0.0
    public var sumKLD = 0.0, sumKLD2 = 0.0
    public var sumPDiff = 0.0, sumPDiff2 = 0.0, sumPDiff4 = 0.0
    public var sameTop = 0
    public var count = 0
    /// Per token: KL divergence and p(target) − p_base(target).
    public var klds: [Float] = []
    public var pDiffs: [Float] = []

    public init() {}

    /// Adds one position: the model's `logits` against the reference's encoded `base` row.
    public mutating func add(_ logits: UnsafeBufferPointer<Float>, base: UnsafeBufferPointer<UInt16>, target: Int) {
        var maxLogit = logits[0], top = 0
        for i in 1..<logits.count where logits[i] > maxLogit { maxLogit = logits[i]; top = i }
        var sumExp = 0.0
        for l in logits { sumExp += Double(expf(l - maxLogit)) }
        let logSumExp = Float(log(sumExp))
        let (scale, minimum) = LogProbabilityFile.header(of: base)
        let nll = maxLogit + logSumExp - logits[target]
        let baseNLL = -(scale * Float(base[4 + target]) + minimum)
        sumNLL += Double(nll); sumNLL2 += Double(nll * nll)
        sumBaseNLL += Double(baseNLL); sumBaseNLL2 += Double(baseNLL * baseNLL)
        sumNLLBaseNLL += Double(nll * baseNLL)
        let logNormalizer = maxLogit + logSumExp
        var kld = 0.0, baseTop = -1, baseTopLogP: Float = 0
        for i in 0..<logits.count {
            let baseLogP = scale * Float(base[4 + i]) + minimum
            if i == 0 || baseLogP > baseTopLogP { baseTopLogP = baseLogP; baseTop = i }
            if baseLogP > -16 { kld += Double(expf(baseLogP) * (baseLogP - logits[i] + logNormalizer)) }
        }
        sumKLD += kld; sumKLD2 += kld * kld
        count += 1
        if top == baseTop { sameTop += 1 }
        let pDiff = expf(-nll) - expf(-baseNLL)
        sumPDiff += Double(pDiff)
        let pDiff2 = Double(pDiff * pDiff)
        sumPDiff2 += pDiff2; sumPDiff4 += pDiff2 * pDiff2
        klds.append(Float(kld))
        pDiffs.append(pDiff)
    }

    /// Mean and its standard error from a sum and a sum of squares (llama.cpp's rule: no error
    /// below 11 values).
    static func meanAndError(_ sum: Double, _ sum2: Double, _ count: Int) -> (Double, Double) {
        guard count >= 1 else { return (0, 0) }
        let f = sum / Double(count), d = sum2 / Double(count) - f * f
        return (f, d > 0 && count > 10 ? (d / Double(count - 1)).squareRoot() : 0)
    }

    var covarianceOfLogPerplexities: Double {
        guard count >= 10 else { return 0 }
        let n = Double(count)
        return (sumNLLBaseNLL / n - (sumNLL / n) * (sumBaseNLL / n)) / (n - 1)
    }

    /// llama.cpp's percentile: linear between the two nearest of the sorted values.
    static func percentile(_ sorted: [Float], _ fraction: Float) -> Float {
        if fraction <= 0 { return sorted[0] }
        if fraction >= 1 { return sorted[sorted.count - 1] }
        var p = fraction * Float(sorted.count - 1)
        let ip = Int(p)
        p -= Float(ip)
        return (1 - p) * sorted[ip] + p * sorted[min(ip + 1, sorted.count - 1)]
    }

    static func median(_ sorted: [Float]) -> Float {
        sorted.count % 2 == 0 ? 0.5 * (sorted[sorted.count / 2] + sorted[sorted.count / 2 - 1]) : sorted[sorted.count / 2]
    }

    /// The running line llama-perplexity prints after each chunk: PPL, ln(PPL(Q)/PPL(base)),
    /// KL divergence, Δp RMS, same top p.
    public func chunkLine(_ chunk: Int) -> String {
        let logPPL = Self.meanAndError(sumNLL, sumNLL2, count), logBase = Self.meanAndError(sumBaseNLL, sumBaseNLL2, count)
        let ppl = exp(logPPL.0)
        let ratioError = (logPPL.1 * logPPL.1 + logBase.1 * logBase.1 - 2 * covarianceOfLogPerplexities).squareRoot()
        let kl = Self.meanAndError(sumKLD, sumKLD2, count)
        let mse = Self.meanAndError(sumPDiff2, sumPDiff4, count)
        let rms = mse.0.squareRoot()
        let top = Double(sameTop) / Double(count)
        return String(format: "%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%",
                      chunk, ppl, ppl * logPPL.1, logPPL.0 - logBase.0, ratioError, kl.0, kl.1,
                      100 * rms, 100 * 0.5 / rms * mse.1, 100 * top, 100 * (top * (1 - top) / Double(count - 1)).squareRoot())
    }

    /// llama-perplexity's closing statistics, line for line (nothing under 100 positions, as
    /// there).
    public var summaryLines: [String] {
        guard count >= 100 else { return ["(fewer than 100 scored positions: no statistics)"] }
        var lines: [String] = []
        func line(_ format: String, _ arguments: CVarArg...) { lines.append(String(format: format, arguments: arguments)) }
        let klds = self.klds.sorted(), pDiffs = self.pDiffs.sorted()
        let logPPL = Self.meanAndError(sumNLL, sumNLL2, count), logBase = Self.meanAndError(sumBaseNLL, sumBaseNLL2, count)
        let ppl = exp(logPPL.0), pplError = ppl * logPPL.1
        let base = exp(logBase.0), baseError = base * logBase.1
        let covariance = covarianceOfLogPerplexities
        lines.append("====== Perplexity statistics ======")
        line("Mean PPL(Q)                   : %10.6f ± %10.6f", ppl, pplError)
        line("Mean PPL(base)                : %10.6f ± %10.6f", base, baseError)
        line("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%", 100 * covariance / (logPPL.1 * logBase.1))
        let ratio = logPPL.0 - logBase.0, ratioError = (logPPL.1 * logPPL.1 + logBase.1 * logBase.1 - 2 * covariance).squareRoot()
        line("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f", ratio, ratioError)
        line("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f", exp(ratio), exp(ratio) * ratioError)
        let pplCovariance = ppl * base * covariance
        line("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f", ppl - base, (pplError * pplError + baseError * baseError - 2 * pplCovariance).squareRoot())
        lines.append("")
        lines.append("====== KL divergence statistics ======")
        let kl = Self.meanAndError(sumKLD, sumKLD2, count)
        line("Mean    KLD: %10.6f ± %10.6f", kl.0, kl.1)
        line("Maximum KLD: %10.6f", klds[klds.count - 1])
        for (label, fraction) in [("99.9%", 0.999), ("99.0%", 0.99), ("95.0%", 0.95), ("90.0%", 0.9)] as [(String, Float)] {
            line("%@   KLD: %10.6f", label, Self.percentile(klds, fraction))
        }
        line("Median  KLD: %10.6f", Self.median(klds))
        for (label, fraction) in [("10.0%", 0.1), (" 5.0%", 0.05), (" 1.0%", 0.01), (" 0.1%", 0.001)] as [(String, Float)] {
            line("%@   KLD: %10.6f", label, Self.percentile(klds, fraction))
        }
        line("Minimum KLD: %10.6f", klds[0])
        lines.append("")
        lines.append("====== Token probability statistics ======")
        let pDiff = Self.meanAndError(sumPDiff, sumPDiff2, count)
        line("Mean    Δp: %6.3f ± %5.3f %%", 100 * pDiff.0, 100 * pDiff.1)
        line("Maximum Δp: %6.3f%%", 100 * pDiffs[pDiffs.count - 1])
        for (label, fraction) in [("99.9%", 0.999), ("99.0%", 0.99), ("95.0%", 0.95), ("90.0%", 0.9), ("75.0%", 0.75)] as [(String, Float)] {
            line("%@   Δp: %6.3f%%", label, 100 * Self.percentile(pDiffs, fraction))
        }
        line("Median  Δp: %6.3f%%", 100 * Self.median(pDiffs))
        for (label, fraction) in [("25.0%", 0.25), ("10.0%", 0.1), (" 5.0%", 0.05), (" 1.0%", 0.01), (" 0.1%", 0.001)] as [(String, Float)] {
            line("%@   Δp: %6.3f%%", label, 100 * Self.percentile(pDiffs, fraction))
        }
        line("Minimum Δp: %6.3f%%", 100 * pDiffs[0])
        let mse = Self.meanAndError(sumPDiff2, sumPDiff4, count)
        let rms = mse.0.squareRoot()
        line("RMS Δp    : %6.3f ± %5.3f %%", 100 * rms, 100 * 0.5 / rms * mse.1)
        let top = Double(sameTop) / Double(count)
        line("Same top p: %6.3f ± %5.3f %%", 100 * top, 100 * (top * (1 - top) / Double(count - 1)).squareRoot())
        return lines
    }

    /// The headline figures, for reports and tests.
    public var meanKLD: Double { sumKLD / Double(max(count, 1)) }
    public var sameTopFraction: Double { Double(sameTop) / Double(max(count, 1)) }
    public var perplexity: Double { exp(sumNLL / Double(max(count, 1))) }
    public var basePerplexity: Double { exp(sumBaseNLL / Double(max(count, 1))) }
    public var rmsPDiff: Double { (sumPDiff2 / Double(max(count, 1))).squareRoot() }
}
