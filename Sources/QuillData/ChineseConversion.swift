import Foundation
import QuillTokenizers

/// Traditional to Simplified Chinese from OpenCC's dictionaries, converted as OpenCC's `t2s`
/// configuration converts: at each position the longest phrase of `TSPhrases` that starts there,
/// else the character's entry in `TSCharacters`, else the character itself; the first candidate of
/// an entry is the one written.
///
/// The dictionaries are OpenCC's text format (`key<TAB>candidate candidate ...`); `scripts/setup`
/// exports them from Debian's `opencc` package (`opencc_dict -f ocd2 -t text`) into
/// `$QUILL_CACHE/opencc`.
public struct ChineseConversion: Sendable {
    /// Phrase keys (two or more characters) to their first candidate.
    var phrases: [String: String] = [:]
    /// The first character of every phrase key: most positions start no phrase.
    var phraseStarts: Set<Unicode.Scalar> = []
    var longestPhrase = 0
    var characters: [Unicode.Scalar: String] = [:]
    /// The smallest scalar any key starts with: text below it (ASCII, Latin) is copied as it is.
    var lowest = UInt32.max

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The dictionaries `TSPhrases.txt` and `TSCharacters.txt` in `folder`.
    public init(traditionalToSimplifiedIn folder: String) throws {
        for name in ["TSPhrases.txt", "TSCharacters.txt"] {
            let path = (folder as NSString).appendingPathComponent(name)
            guard let data = FileContents.data(atPath: path) else {
                throw Failure(description: "\(path): missing; Traditional to Simplified conversion needs OpenCC's TSPhrases.txt and "
                              + "TSCharacters.txt (scripts/setup exports them from Debian's opencc package)")
            }
            guard let text = String(data: data, encoding: .utf8) else { throw Failure(description: "\(path): not UTF-8") }
            for (n, line) in text.split(separator: "\n").enumerated() {
                let fields = line.split(separator: "\t", maxSplits: 1)
                guard fields.count == 2, let first = fields[1].split(separator: " ").first, !fields[0].isEmpty else {
                    throw Failure(description: "\(path):\(n + 1): expected key<TAB>candidates, got \"\(line.prefix(40))\"")
                }
                let key = fields[0].unicodeScalars
                lowest = min(lowest, key.first!.value)
                if key.count == 1 {
                    characters[key.first!] = String(first)
                } else {
                    phrases[String(fields[0])] = String(first)
                    phraseStarts.insert(key.first!)
                    longestPhrase = max(longestPhrase, key.count)
                }
            }
        }
    }

    /// The dictionaries in the cache (`$QUILL_CACHE/opencc`, else `~/.cache/quill/opencc`).
    public static func traditionalToSimplified() throws -> ChineseConversion {
        let root = ProcessInfo.processInfo.environment["QUILL_CACHE"]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/quill")
        return try ChineseConversion(traditionalToSimplifiedIn: (root as NSString).appendingPathComponent("opencc"))
    }

    public func convert(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        out.reserveCapacity(scalars.count)
        var i = 0
        scan: while i < scalars.count {
            let s = scalars[i]
            guard s.value >= lowest else { out.append(s); i += 1; continue }
            if phraseStarts.contains(s) {
                for length in stride(from: min(longestPhrase, scalars.count - i), through: 2, by: -1) {
                    var key = String.UnicodeScalarView()
                    key.append(contentsOf: scalars[i..<(i + length)])
                    if let phrase = phrases[String(key)] {
                        out.append(contentsOf: phrase.unicodeScalars)
                        i += length
                        continue scan
                    }
                }
            }
            if let c = characters[s] { out.append(contentsOf: c.unicodeScalars) } else { out.append(s) }
            i += 1
        }
        return String(out)
    }
}
