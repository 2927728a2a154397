import QuillCore

/// A GGUF file's quantization as llama.cpp names it (`general.file_type`, llama-quantize's TYPE
/// argument): a base tensor type and, for the K-quant mixes, rules that give some tensors more bits.
public enum GGUFFileType: String, CaseIterable, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case q8_0 = "Q8_0", q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1"
    case q2_K = "Q2_K", q2_K_S = "Q2_K_S", q3_K_S = "Q3_K_S", q3_K_M = "Q3_K_M", q3_K_L = "Q3_K_L"
    case q4_K_S = "Q4_K_S", q4_K_M = "Q4_K_M", q5_K_S = "Q5_K_S", q5_K_M = "Q5_K_M", q6_K = "Q6_K"

    /// Parses llama-quantize's names, case-insensitively; Q3_K, Q4_K and Q5_K mean their _M mixes as there.
    public init?(name: String) {
        let upper = name.uppercased()
        let aliases = ["Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"]
        guard let type = GGUFFileType(rawValue: aliases[upper] ?? upper) else { return nil }
        self = type
    }

    /// The value llama.cpp stores in `general.file_type` (`llama_ftype`).
    public var code: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q2_K: 10
        case .q3_K_S: 11
        case .q3_K_M: 12
        case .q3_K_L: 13
        case .q4_K_S: 14
        case .q4_K_M: 15
        case .q5_K_S: 16
        case .q5_K_M: 17
        case .q6_K: 18
        case .q2_K_S: 21
        case .bf16: 32
        }
    }

    /// The type most weight matrices get.
    public var baseType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q2_K, .q2_K_S: .q2_K
        case .q3_K_S, .q3_K_M, .q3_K_L: .q3_K
        case .q4_K_S, .q4_K_M: .q4_K
        case .q5_K_S, .q5_K_M: .q5_K
        case .q6_K: .q6_K
        }
    }

    /// One line for `--help`.
    public static var namesForHelp: String {
        allCases.map(\.rawValue).joined(separator: ", ") + " (Q3_K, Q4_K, Q5_K: the _M mixes)"
    }
}

/// Which type each tensor of a model gets under a file type: llama.cpp's rules (llama-quant.cpp),
/// so that a Quill Q4_K_M file has the same tensor types as llama-quantize's:
/// - only weight matrices are quantized (2-D, named `*weight`, not norms, not positions);
/// - the output head (or the token embedding where it is tied to it) gets Q6_K, or Q8_0 when its
///   row is not a whole number of the base type's blocks;
/// - the mixes give attn_v and ffn_down more bits by layer position (`moreBits`: the first and
///   last eighth of the layers and every third one between; fused qkv counts as attn_v),
///   attn_output per mix;
/// - a row that is not a whole number of 256 falls back to Q4_0 / Q5_0 / Q5_1 / Q8_0 (the
///   K-quant's 32-block neighbour), or F16 when not even 32 divides it.
/// - with an importance matrix, Q4_0 and Q5_0 give the first eighth of ffn_down Q4_1 / Q5_1.
/// Rules llama.cpp keeps for architectures Quill does not load (Falcon, mixtures of experts, the
/// 70B attn_v bump) and for the IQ types are not here.
public struct GGUFQuantizationPlan {
    public struct Options: Sendable {
        public var fileType: GGUFFileType
        /// Every quantized tensor the base type, no mix rules (llama-quantize --pure).
        public var pure = false
        /// Keep output.weight as it is (llama-quantize --leave-output-tensor).
        public var quantizeOutput = true
        public var outputType: GGMLType?
        public var tokenEmbeddingType: GGMLType?
        /// Quantizing with an importance matrix (llama-quantize --imatrix), which one rule looks at.
        public var hasImportanceMatrix = false

        public init(fileType: GGUFFileType) { self.fileType = fileType }
    }

    public struct Entry {
        public let name: String
        public let dimensions: [Int]
        public let from: GGMLType
        public let to: GGMLType
        /// Set when the type was changed because the row length does not fit the wanted one.
        public let fallback: GGMLType?
    }

    public let entries: [Entry]

    /// - Parameters:
    ///   - tensors: name, ggml dimensions and current type of each tensor.
    ///   - layers: the model's block count; groupedQueries: heads per key/value head.
    public init(tensors: [(name: String, dimensions: [Int], type: GGMLType)], layers: Int, groupedQueries: Int, options: Options) {
        let ordered = tensors.sorted { a, b in
            let (la, lb) = (Self.layer(of: a.name), Self.layer(of: b.name))
            return la != lb ? la < lb : a.name < b.name
        }
        var counters = Counters(attentionV: ordered.filter { Category(name: $0.name).isAttentionV }.count, layers: layers,
                                tiedEmbeddings: !ordered.contains { $0.name == "output.weight" }, groupedQueries: groupedQueries)
        entries = ordered.map { t in
            guard Self.allowsQuantization(t.name, t.dimensions, options) else {
                return Entry(name: t.name, dimensions: t.dimensions, from: t.type, to: t.type, fallback: nil)
            }
            let category = Category(name: t.name)
            if let type = options.tokenEmbeddingType, category == .tokenEmbedding {
                return Entry(name: t.name, dimensions: t.dimensions, from: t.type, to: type, fallback: nil)
            }
            if let type = options.outputType, category == .output {
                return Entry(name: t.name, dimensions: t.dimensions, from: t.type, to: type, fallback: nil)
            }
            var type = options.fileType.baseType
            guard type.isBlockQuantized else { return Entry(name: t.name, dimensions: t.dimensions, from: t.type, to: type, fallback: nil) }
            if !options.pure {
                type = counters.mixType(type, category, columns: t.dimensions[0], fileType: options.fileType,
                                        hasImportanceMatrix: options.hasImportanceMatrix)
            }
            let fitted = Self.fitting(type, columns: t.dimensions[0])
            return Entry(name: t.name, dimensions: t.dimensions, from: t.type, to: fitted, fallback: fitted == type ? nil : type)
        }
    }

    /// The layer a `blk.N.` tensor belongs to, -1 for the others (which come first, as in llama.cpp).
    static func layer(of name: String) -> Int {
        guard name.hasPrefix("blk.") else { return -1 }
        return Int(name.dropFirst(4).prefix { $0.isNumber }) ?? -1
    }

    static func allowsQuantization(_ name: String, _ dimensions: [Int], _ options: Options) -> Bool {
        guard dimensions.count >= 2, name.hasSuffix("weight") else { return false }
        if name == "output.weight" && !options.quantizeOutput { return false }
        let kept = ["_norm.weight", "ffn_gate_inp.weight", "attn_rel_b.weight", "position_embd.weight", "token_types.weight",
                    "ssm_conv1d", "altup", "laurel", "per_layer_model_proj"]
        return !kept.contains { name.contains($0) }
    }

    /// The type itself when the row holds whole blocks of it, else its 32-block neighbour, else F16.
    static func fitting(_ type: GGMLType, columns: Int) -> GGMLType {
        if columns % type.blockLayout.elements == 0 { return type }
        let neighbour: GGMLType = switch type {
        case .q2_K, .q3_K: .q4_0
        case .q4_K: .q5_0
        case .q5_K: .q5_1
        case .q6_K: .q8_0
        default: type
        }
        return columns % neighbour.blockLayout.elements == 0 ? neighbour : .f16
    }

    enum Category: Equatable {
        case output, tokenEmbedding, attentionQKV, attentionV, attentionK, attentionQ, attentionOutput
        case ffnUp, ffnGate, ffnDown, other

        init(name: String) {
            if name == "output.weight" { self = .output }
            else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { self = .tokenEmbedding }
            else if name.contains("attn_qkv.weight") { self = .attentionQKV }
            else if name.contains("attn_v.weight") || name.contains("attn_kv_b.weight") { self = .attentionV }
            else if name.contains("attn_k.weight") { self = .attentionK }
            else if name.contains("attn_q.weight") { self = .attentionQ }
            else if name.contains("attn_output.weight") { self = .attentionOutput }
            else if name.contains("ffn_up") { self = .ffnUp }
            else if name.contains("ffn_gate") { self = .ffnGate }
            else if name.contains("ffn_down") { self = .ffnDown }
            else { self = .other }
        }

        var isAttentionV: Bool { self == .attentionV || self == .attentionQKV }
    }

    /// The mix rules, with the running counts of attn_v and ffn_down tensors they depend on.
    struct Counters {
        let attentionV: Int
        let layers: Int
        let tiedEmbeddings: Bool
        let groupedQueries: Int
        var seenAttentionV = 0
        var seenFFNDown = 0

        init(attentionV: Int, layers: Int, tiedEmbeddings: Bool, groupedQueries: Int) {
            self.attentionV = attentionV; self.layers = layers; self.tiedEmbeddings = tiedEmbeddings; self.groupedQueries = groupedQueries
        }

        /// The first and last eighth of the layers, and every third layer between.
        static func moreBits(_ i: Int, _ n: Int) -> Bool { i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2 }

        mutating func mixType(_ base: GGMLType, _ category: Category, columns: Int, fileType: GGUFFileType,
                              hasImportanceMatrix: Bool) -> GGMLType {
            if category == .output || (tiedEmbeddings && category == .tokenEmbedding) {
                if columns % base.blockLayout.elements != 0 { return .q8_0 }
                return base == .q8_0 ? .q8_0 : .q6_K
            }
            switch category {
            case .attentionV, .attentionQKV:   // fused qkv counts as attn_v in llama.cpp
                defer { seenAttentionV += 1 }
                switch fileType {
                case .q2_K: return groupedQueries >= 4 ? .q4_K : .q3_K
                case .q2_K_S where groupedQueries >= 4: return .q4_K
                case .q3_K_M: return seenAttentionV < 2 ? .q5_K : .q4_K
                case .q3_K_L: return .q5_K
                case .q4_K_M, .q5_K_M: return Self.moreBits(seenAttentionV, attentionV) ? .q6_K : base
                case .q4_K_S where seenAttentionV < 4: return .q5_K
                default: return base
                }
            case .ffnDown:
                defer { seenFFNDown += 1 }
                let (i, n) = (seenFFNDown, layers)
                switch fileType {
                case .q2_K: return .q3_K
                case .q2_K_S: return i < n / 8 ? .q4_K : base
                case .q3_K_M: return i < n / 16 ? .q5_K : .q4_K
                case .q3_K_L: return .q5_K
                case .q4_K_M, .q5_K_M: return Self.moreBits(i, n) ? .q6_K : base
                case .q4_K_S: return i < n / 8 ? .q5_K : base
                // "craziness in the first few ffn_down layers" that even an importance matrix leaves
                case .q4_0 where hasImportanceMatrix && i < n / 8: return .q4_1
                case .q5_0 where hasImportanceMatrix && i < n / 8: return .q5_1
                default: return base
                }
            case .attentionOutput:
                switch fileType {
                case .q2_K: return .q3_K
                case .q3_K_M: return .q4_K
                case .q3_K_L: return .q5_K
                default: return base
                }
            default:
                return base
            }
        }
    }
}

extension GGMLType {
    /// Stored in blocks with scales (not F32, F16, BF16 or the integer types).
    public var isBlockQuantized: Bool { blockLayout.elements > 1 }
}
