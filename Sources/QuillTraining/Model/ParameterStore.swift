import Foundation
import QuillModels
import QuillFormats

/// Named fp32 tensors in one contiguous allocation, in the order they were added: a model's
/// trainable weights, their gradients (a second store with the same layout), or the optimizer's
/// moments. One buffer means one loop for AdamW, gradient norms and zeroing, and stable
/// pointers for the kernels.
public final class ParameterStore: @unchecked Sendable {
    // @unchecked: the storage is written by one training step at a time; the kernels split it
    // over the pool but never hand the store itself across threads.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        /// Whether AdamW's weight decay applies: matrices yes; norms, biases and embeddings no.
        public let decays: Bool
    }

    public private(set) var entries: [Entry]
    private var index: [String: Int]
    public let count: Int
    public let storage: UnsafeMutableBufferPointer<Float>

    /// A zeroed store laid out as `layout` (name, shape, decays). The zeros come from `calloc`,
    /// which for a large store maps pages the kernel zeroes when first touched: a store that is
    /// never written (a model's gradients before LoRA replaces them) costs no memory, where
    /// writing the zeros made a 1.5B model's load peak at twice its weights.
    public init(layout: [(name: String, shape: [Int], decays: Bool)]) {
        var offset = 0
        entries = layout.map { item in
            defer { offset += item.shape.reduce(1, *) }
            return Entry(name: item.name, shape: item.shape, offset: offset, decays: item.decays)
        }
        count = offset
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
        guard let zeros = calloc(max(1, offset), MemoryLayout<Float>.stride) else {
            fatalError("out of memory for \(offset) fp32 values (\(offset * 4 / 1_000_000) MB)")
        }
        storage = UnsafeMutableBufferPointer(start: zeros.bindMemory(to: Float.self, capacity: max(1, offset)), count: max(1, offset))
    }

    /// A zeroed store with the same layout (gradients, moments).
    public convenience init(sameLayoutAs other: ParameterStore) {
        self.init(layout: other.entries.map { ($0.name, $0.shape, $0.decays) })
    }

    deinit { free(storage.baseAddress) }

    public var base: UnsafeMutablePointer<Float> { storage.baseAddress! }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The first float of a tensor; the name must exist.
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let i = index[name] else { preconditionFailure("no parameter \(name)") }
        return base + entries[i].offset
    }

    public func tensor(_ name: String) -> [Float] {
        guard let e = entry(name) else { return [] }
        return Array(UnsafeBufferPointer(start: base + e.offset, count: e.count))
    }

    public func set(_ name: String, _ values: [Float]) {
        guard let e = entry(name) else { preconditionFailure("no parameter \(name)") }
        precondition(values.count == e.count, "\(name): \(values.count) values for shape \(e.shape)")
        values.withUnsafeBufferPointer { (base + e.offset).update(from: $0.baseAddress!, count: e.count) }
    }

    public func zero() { storage.update(repeating: 0) }

    public func copy(from other: ParameterStore) {
        precondition(other.count == count)
        base.update(from: other.base, count: count)
    }
}

extension ParameterStore {
    /// Every tensor as one safetensors file (written beside and renamed into place).
    public func write(to url: URL, metadata: [String: String] = [:]) throws {
        try SafetensorsWriter.write(entries.map { SafetensorsWriter.Tensor(name: $0.name, shape: $0.shape,
                                                                        data: UnsafeBufferPointer(start: base + $0.offset, count: $0.count)) },
                                    metadata: metadata, to: url)
    }

    /// Fills every tensor from a safetensors file with the same names and shapes; returns the
    /// file's metadata.
    @discardableResult
    public func read(from path: String) throws -> [String: String] {
        let file = try SafetensorsFile(path: path)
        for entry in entries {
            guard let info = file.tensors[entry.name] else { throw ModelError.missingTensor(path: path, name: entry.name) }
            guard info.shape == entry.shape else {
                throw ModelError.shapeMismatch(path: path, name: entry.name, expected: entry.shape, found: info.shape)
            }
            set(entry.name, try file.floats(entry.name))
        }
        return file.metadata
    }
}
