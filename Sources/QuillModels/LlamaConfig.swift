import QuillCore
import QuillFormats

/// Hyperparameters of a Llama-family model (Llama 2/3, Mistral, Qwen2, SmolLM), read from GGUF
/// metadata (`{arch}.embedding_length`, ...) with the fallbacks llama.cpp uses.
public struct LlamaConfig: Sendable, Equatable {
    public var architecture: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headSize: Int
    public var intermediateSize: Int
    public var rmsNormEpsilon: Float
    public var ropeTheta: Float
    public var contextLength: Int
    public var ropePairing: Layers.RopePairing
    public var slidingWindow: Int?

    public static let supportedArchitectures = ["llama", "mistral", "qwen2"]

    public init(gguf file: GGUFFile) throws {
        let arch = try file.string("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw ModelError.unsupportedArchitecture(path: file.path, found: arch, supported: Self.supportedArchitectures)
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(arch).\(key)"]?.int else { throw ModelError.missingKey(path: file.path, key: "\(arch).\(key)") }
            return v
        }
        architecture = arch
        hiddenSize = try int("embedding_length")
        layers = try int("block_count")
        heads = try int("attention.head_count")
        kvHeads = (try? int("attention.head_count_kv")) ?? heads
        headSize = (try? int("attention.key_length")) ?? hiddenSize / heads
        intermediateSize = try int("feed_forward_length")
        rmsNormEpsilon = Float(file.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5)
        ropeTheta = Float(file.metadata["\(arch).rope.freq_base"]?.double ?? 10_000)
        contextLength = (try? int("context_length")) ?? 2048
        vocabularySize = file.metadata["\(arch).vocab_size"]?.int
            ?? (file.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0)
        // llama.cpp's converter permutes q/k rows of `llama` files for adjacent-pair rotation;
        // qwen2 files keep Hugging Face's rotate-half layout.
        ropePairing = arch == "qwen2" ? .halves : .adjacent
        slidingWindow = file.metadata["\(arch).attention.sliding_window"]?.int
    }

    /// θ_i = base^(-2i/HS), i < HS/2.
    public var inverseFrequencies: [Float] {
        (0..<(headSize / 2)).map { Float(1 / pow(Double(ropeTheta), Double(2 * $0) / Double(headSize))) }
    }
}

import Foundation
