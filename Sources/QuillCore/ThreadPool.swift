// One persistent pool sized to the cores. The caller works too, and idle workers spin briefly
// before sleeping: a decode step issues hundreds of small parallel loops, and waking sleeping
// threads for each (GCD's concurrentPerform) cost more than the loops themselves.

import CQuillKernels
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ThreadPool: @unchecked Sendable {
    // @unchecked: `body` and `count` are written only by the caller between jobs, while every
    // worker is parked or spinning on `generation`; workers read them only after seeing a new
    // generation (acquire), and the caller waits for all of them before the next write.
    public static let shared = ThreadPool(threads: ProcessInfo.processInfo.activeProcessorCount)

    public let threads: Int
    private let generation = Atomic<Int>(0)
    private let next = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private var body: ((Int) -> Void)?
    private var count = 0
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private let callerLock = Mutex<Void>(())

    /// Spin iterations before a worker goes to sleep (tens of microseconds).
    private static let spinLimit = 20_000

    public init(threads: Int) {
        self.threads = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        for _ in 1..<self.threads {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            pthread_create(&thread, nil, { context in
                let pool = Unmanaged<ThreadPool>.fromOpaque(context!).takeRetainedValue()
                pool.workerLoop()
                return nil
            }, context)
            pthread_detach(thread)
        }
    }

    /// Runs body(0..<count) across the pool and returns when all are done. Chunks are claimed
    /// one index at a time, so give it coarse units (row ranges, heads), not single elements.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || threads == 1 {
            for i in 0..<count { body(i) }
            return
        }
        callerLock.withLock { _ in
            withoutActuallyEscaping(body) { body in
                self.body = body
                self.count = count
                next.store(0, ordering: .relaxed)
                finished.store(0, ordering: .relaxed)
                // store then load: sequentially consistent, so a worker going to sleep is seen
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(&mutex); pthread_cond_broadcast(&wake); pthread_mutex_unlock(&mutex)
                }
                runChunks()
                // wait for the workers to finish their claimed chunks
                while finished.load(ordering: .acquiring) < threads - 1 { spinPause() }
                self.body = nil
            }
        }
    }

    private func runChunks() {
        guard let body else { return }
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            if i >= count { break }
            body(i)
        }
    }

    private func workerLoop() {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinLimit { spinPause(); continue }
                pthread_mutex_lock(&mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(&wake, &mutex) }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(&mutex)
            }
            seen = generation.load(ordering: .acquiring)
            runChunks()
            finished.add(1, ordering: .releasing)
        }
    }
}

@inline(__always) private func spinPause() { quill_cpu_relax() }
