/// How much of a reference text a cleaned text kept, and how much else it kept: character-level
/// precision, recall and F1 over the multisets of letters, marks and digits (Unicode L, M, N).
/// Whitespace, punctuation and symbols are left out, so what differs only in rendering (line
/// wrapping, indentation, bullets, a text edition's ASCII table borders) does not count; every
/// word's letters and every Chinese character do.
public struct TextOverlap: Sendable, Equatable {
    public var precision: Double, recall: Double
    public var f1: Double { precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall) }

    public init(candidate: String, reference: String) {
        func counts(_ s: String) -> [Unicode.Scalar: Int] {
            var c: [Unicode.Scalar: Int] = [:]
            for scalar in s.unicodeScalars where Self.counts(scalar) { c[scalar, default: 0] += 1 }
            return c
        }
        let a = counts(candidate), b = counts(reference)
        let common = a.reduce(0) { $0 + min($1.value, b[$1.key] ?? 0) }
        let total = (a.values.reduce(0, +), b.values.reduce(0, +))
        precision = total.0 == 0 ? 0 : Double(common) / Double(total.0)
        recall = total.1 == 0 ? 0 : Double(common) / Double(total.1)
    }

    static func counts(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }
}
