/// ggml tensor types: the code stored in the file, and the block layout that sizes the data.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    // The codes GGUF files store (ggml's `ggml_type`).
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30

    /// (elements per block, bytes per block)
    public var blockLayout: (elements: Int, bytes: Int) {
        switch self {
        case .f32: (1, 4)
        case .f16, .bf16: (1, 2)
        case .q4_0: (32, 18)
        case .q4_1: (32, 20)
        case .q5_0: (32, 22)
        case .q5_1: (32, 24)
        case .q8_0: (32, 34)
        case .q8_1: (32, 36)
        case .q2_K: (256, 84)
        case .q3_K: (256, 110)
        case .q4_K: (256, 144)
        case .q5_K: (256, 176)
        case .q6_K: (256, 210)
        case .q8_K: (256, 292)
        case .i8: (1, 1)
        case .i16: (1, 2)
        case .i32: (1, 4)
        case .i64, .f64: (1, 8)
        }
    }
}

extension GGMLType {
    /// ggml's name for the type, as llama.cpp prints it: F16, Q4_K, BF16.
    public var name: String { "\(self)".uppercased() }

    /// Bytes that `elements` values (a whole number of blocks) take in this type.
    public func byteCount(_ elements: Int) -> Int { elements / blockLayout.elements * blockLayout.bytes }
}
