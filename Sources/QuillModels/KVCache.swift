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
}
