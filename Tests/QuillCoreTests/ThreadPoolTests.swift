import Foundation
import Synchronization
import Testing
import QuillCore

/// The pool runs every chunk exactly once, whatever the chunk counts and however many threads
/// compete for the cores.
@Suite struct ThreadPoolTests {
    @Test(arguments: [2, 5])
    func everyChunkOnce(threads: Int) {
        let pool = ThreadPool(threads: threads)   // 5 threads on this 2-core machine: oversubscribed
        // each chunk writes only its own slot, so a chunk run twice shows as 2
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 300)
        defer { hits.deallocate() }
        for job in 0..<2_000 {
            let count = job % 300 + 1
            hits.initialize(repeating: 0, count: count)
            pool.parallelFor(count) { i in hits[i] += 1 }
            let wrong = (0..<count).filter { hits[$0] != 1 }
            #expect(wrong.isEmpty, "job \(job): chunks \(wrong) ran \(wrong.map { hits[$0] }) times")
        }
    }

    @Test func moreChunksThanOneJobHolds() {
        let pool = ThreadPool(threads: 2)
        let sum = Atomic<Int>(0)
        let count = (1 << 20) + 17
        pool.parallelFor(count) { i in sum.add(i, ordering: .relaxed) }
        #expect(sum.load(ordering: .relaxed) == count * (count - 1) / 2)
    }
}
