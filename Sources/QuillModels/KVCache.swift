/// Keys and values of one sequence for every layer: [layers][capacity, NKV·HS].
public struct KVCache: Sendable {
    public let capacity: Int
    public let width: Int
    /// Positions filled so far.
    public internal(set) var count = 0
    private var keys: [[Float]]
    private var values: [[Float]]

    public init(layers: Int, capacity: Int, width: Int) {
        self.capacity = capacity
        self.width = width
        keys = Array(repeating: [Float](repeating: 0, count: capacity * width), count: layers)
        values = keys
    }

    /// Copies n rows of keys and values [n, width] into positions position..<position+n.
    mutating func store(layer: Int, at position: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count n: Int) {
        let offset = position * width
        keys[layer].withUnsafeMutableBufferPointer { (($0.baseAddress! + offset)).update(from: k, count: n * width) }
        values[layer].withUnsafeMutableBufferPointer { (($0.baseAddress! + offset)).update(from: v, count: n * width) }
    }

    func withLayer<R>(_ layer: Int, _ body: (UnsafePointer<Float>, UnsafePointer<Float>) -> R) -> R {
        keys[layer].withUnsafeBufferPointer { k in values[layer].withUnsafeBufferPointer { v in body(k.baseAddress!, v.baseAddress!) } }
    }

    /// Forgets positions from `position` on (to re-run from a shared prefix).
    public mutating func truncate(to position: Int) { count = min(count, max(0, position)) }

    /// Throws `contextOverflow` unless every cache has room for `n` more positions.
    static func requireRoom(_ caches: [KVCache], for n: Int) throws {
        for cache in caches where cache.count + n > cache.capacity {
            throw ModelError.contextOverflow(tokens: cache.count + n, context: cache.capacity)
        }
    }

    /// Keys and values of one layer of every cache at once (for a batched decode step).
    static func withLayer<R>(_ layer: Int, of caches: [KVCache],
                             _ body: ([UnsafePointer<Float>], [UnsafePointer<Float>]) -> R) -> R {
        func gather(_ i: Int, _ keys: [UnsafePointer<Float>], _ values: [UnsafePointer<Float>]) -> R {
            guard i < caches.count else { return body(keys, values) }
            return caches[i].withLayer(layer) { k, v in gather(i + 1, keys + [k], values + [v]) }
        }
        return gather(0, [], [])
    }
}
