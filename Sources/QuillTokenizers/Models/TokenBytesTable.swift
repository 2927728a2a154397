#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Token ids by their UTF-8 bytes, looked up from a byte slice without building a String: loading
/// a SentencePiece or tiktoken vocabulary asks it for both halves of every split of every token
/// (Gemma 3's 262,144 pieces: millions of lookups, where String keys would each be built and
/// hashed in normalized form).
struct TokenBytesTable {
    private var bytes: [UInt8] = []
    private var starts: [Int] = [0]
    private var ids: [Int32] = []
    private var slots: [Int32]
    private let mask: Int

    init(_ vocab: [String: Int32]) {
        var size = 16
        while size < vocab.count * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for (token, id) in vocab {
            let utf8 = Array(token.utf8)
            var slot = utf8.withUnsafeBufferPointer { Self.hash($0) } & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }   // keys are distinct: their Strings are
            slots[slot] = Int32(ids.count)
            bytes.append(contentsOf: utf8); starts.append(bytes.count); ids.append(id)
        }
    }

    /// FNV-1a, 64 bits.
    @inline(__always)
    private static func hash(_ key: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }

    /// The id of the token whose UTF-8 bytes are `key`.
    func id(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var slot = Self.hash(key) & mask
        while slots[slot] >= 0 {
            let entry = Int(slots[slot]), start = starts[entry], count = starts[entry + 1] - start
            if count == key.count && bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress! + start, key.baseAddress!, count) == 0 }) {
                return ids[entry]
            }
            slot = (slot + 1) & mask
        }
        return nil
    }
}
