// Character classes that pre-tokenizer regexes and normalizers ask about, answered from a table.
//
// Oniguruma (what HF tokenizers compiles its regexes with) defines \p{L}, \p{N} and \s by Unicode
// general category and the White_Space property; we read the same from the Swift standard library.
// The BMP answers come from a 64 KiB table built once; astral scalars ask the stdlib directly.

package struct ScalarClass: OptionSet, Sendable {
    package let rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let letter = ScalarClass(rawValue: 1 << 0)        // \p{L}
    package static let number = ScalarClass(rawValue: 1 << 1)        // \p{N}
    package static let whitespace = ScalarClass(rawValue: 1 << 2)    // \s (White_Space)
    package static let mark = ScalarClass(rawValue: 1 << 3)          // \p{M}
    package static let punctuation = ScalarClass(rawValue: 1 << 4)   // \p{P}
    package static let symbol = ScalarClass(rawValue: 1 << 5)        // \p{S}
    package static let control = ScalarClass(rawValue: 1 << 6)       // Cc, Cf, Co, Cn (BERT's "control")
    package static let connector = ScalarClass(rawValue: 1 << 7)     // Pc, part of \w
    package static let decimalDigit = ScalarClass(rawValue: 1 << 8)  // Nd
    package static let upper = ScalarClass(rawValue: 1 << 9)         // Lu, Lt
    package static let lower = ScalarClass(rawValue: 1 << 10)        // Ll
    package static let nonspacingMark = ScalarClass(rawValue: 1 << 11) // Mn
    package static let joinControl = ScalarClass(rawValue: 1 << 12)   // U+200C, U+200D
    package static let alphabetic = ScalarClass(rawValue: 1 << 13)    // Alphabetic property

    /// \w as Oniguruma defines it for Unicode (UTS #18): alphabetic, marks, decimal digits,
    /// connector punctuation and the join controls. "①" is not a word character; "Ⅻ" and a ZWJ are.
    package static let word: ScalarClass = [.alphabetic, .mark, .decimalDigit, .connector, .joinControl]
}

package enum UnicodeClasses {
    private static let bmp: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 0x10000)
        for value in 0..<0x10000 {
            if let scalar = Unicode.Scalar(UInt32(value)) { table[value] = compute(scalar).rawValue }
            else { table[value] = ScalarClass.control.rawValue }   // surrogates: Cs
        }
        return table
    }()

    @inline(__always)
    package static func of(_ value: UInt32) -> ScalarClass {
        if value < 0x10000 { return ScalarClass(rawValue: bmp[Int(value)]) }
        guard let scalar = Unicode.Scalar(value) else { return .control }
        return compute(scalar)
    }

    package static func compute(_ scalar: Unicode.Scalar) -> ScalarClass {
        var c: ScalarClass = []
        let p = scalar.properties
        switch p.generalCategory {
        case .uppercaseLetter, .titlecaseLetter: c.formUnion([.letter, .upper])
        case .lowercaseLetter: c.formUnion([.letter, .lower])
        case .modifierLetter, .otherLetter: c.insert(.letter)
        case .nonspacingMark: c.formUnion([.mark, .nonspacingMark])
        case .spacingMark, .enclosingMark: c.insert(.mark)
        case .decimalNumber: c.formUnion([.number, .decimalDigit])
        case .letterNumber, .otherNumber: c.insert(.number)
        case .connectorPunctuation: c.formUnion([.punctuation, .connector])
        case .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: c.insert(.punctuation)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: c.insert(.symbol)
        case .control, .format, .privateUse, .unassigned, .surrogate: c.insert(.control)
        default: break
        }
        if p.isWhitespace { c.insert(.whitespace) }
        if scalar.value == 0x200C || scalar.value == 0x200D { c.insert(.joinControl) }
        if p.isAlphabetic { c.insert(.alphabetic) }
        return c
    }
}

// UTF-8 helpers over raw buffers. Text inside the tokenizer is always valid UTF-8 (it comes
// from a Swift String or was validated), so decoding needs no error path.
@inline(__always)
package func decodeScalar(_ p: UnsafePointer<UInt8>, _ i: Int) -> (value: UInt32, length: Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
    }
    return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
        | UInt32(p[i + 3] & 0x3F), 4)
}

@inline(__always)
package func utf8Length(leadByte b: UInt8) -> Int {
    b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
}

package func appendUTF8(_ value: UInt32, to out: inout [UInt8]) {
    if value < 0x80 { out.append(UInt8(value)) }
    else if value < 0x800 {
        out.append(UInt8(0xC0 | value >> 6)); out.append(UInt8(0x80 | value & 0x3F))
    } else if value < 0x10000 {
        out.append(UInt8(0xE0 | value >> 12)); out.append(UInt8(0x80 | (value >> 6) & 0x3F))
        out.append(UInt8(0x80 | value & 0x3F))
    } else {
        out.append(UInt8(0xF0 | value >> 18)); out.append(UInt8(0x80 | (value >> 12) & 0x3F))
        out.append(UInt8(0x80 | (value >> 6) & 0x3F)); out.append(UInt8(0x80 | value & 0x3F))
    }
}

/// The length of the longest prefix of `bytes` that is complete, valid UTF-8.
package func completeUTF8PrefixLength(_ bytes: [UInt8]) -> Int {
    var i = bytes.count
    // Walk back over at most three continuation bytes to the last lead byte.
    var back = 0
    while i > 0 && back < 4 && bytes[i - 1] & 0xC0 == 0x80 { i -= 1; back += 1 }
    if i == 0 { return 0 }
    let lead = bytes[i - 1]
    let need = lead < 0x80 ? 1 : lead >= 0xC0 ? utf8Length(leadByte: lead) : 1
    return (back + 1 >= need) ? bytes.count : i - 1
}
