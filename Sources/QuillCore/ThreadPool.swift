// One persistent pool sized to the cores. The caller works too, and idle workers spin briefly
// before sleeping: a decode step issues hundreds of small parallel loops, and waking sleeping
// threads for each (GCD's concurrentPerform) cost more than the loops themselves.
//
// A job is finished when its chunks are, not when every worker has checked in: a worker that is
// descheduled (another process took its core) simply claims nothing, and the caller runs the
// chunks itself. Waiting for all workers instead made decoding 20x slower on a busy machine.

import CQuillKernels
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ThreadPool: @unchecked Sendable {
    // @unchecked: `body` is written by the caller only while no chunk of a job is claimable
    // (before publishing a job, after all its chunks completed). A worker reads it only after
    // claiming a chunk of the current job, and the caller does not return before that chunk
    // completes.
    public static let shared = ThreadPool(threads: defaultThreads)

    /// The threads Quill's parallel work uses: those `useThreads` asked for (the command line's
    /// `--threads`, `QUILL_THREADS`), else every core. The shared pool reads it when first used,
    /// so ask before any parallel work starts.
    public static var defaultThreads: Int {
        let requested = requestedThreads.load(ordering: .relaxed)
        return requested > 0 ? requested : ProcessInfo.processInfo.activeProcessorCount
    }
    private static let requestedThreads = Atomic<Int>(0)

    /// Sets `defaultThreads` (at least 1).
    public static func useThreads(_ threads: Int) {
        requestedThreads.store(max(1, threads), ordering: .relaxed)
    }

    public let threads: Int
    /// The job in one word: generation (high 24 bits), chunk count (20 bits) and next unclaimed
    /// chunk (low 20 bits), so a worker that wakes late cannot claim a chunk of a job that has
    /// moved on.
    private let state = Atomic<UInt64>(0)
    private static let chunkBits: UInt64 = 20, chunkMask: UInt64 = (1 << 20) - 1
    private let completed = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private var body: ((Int) -> Void)?
    /// The sleepers' lock and condition, at addresses of their own (a class property passed by `&`
    /// has no address that lasts past the call in Swift's rules; pthread objects must not move).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// One caller's job at a time. A pthread mutex rather than Synchronization's `Mutex`, whose
    /// futexes ThreadSanitizer cannot see: it would report the next caller's write of `body` as
    /// racing with the last job's reads.
    private let callerLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// Spin iterations before a worker goes to sleep (tens of microseconds).
    private static let spinLimit = 20_000

    public init(threads: Int) {
        self.threads = max(1, threads)
        mutex.initialize(to: pthread_mutex_t())
        wake.initialize(to: pthread_cond_t())
        callerLock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_mutex_init(callerLock, nil)
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
        if count > Self.chunkMask {   // more chunks than a job holds: run them in jobs of the most it does
            let most = Int(Self.chunkMask)
            for base in stride(from: 0, to: count, by: most) { parallelFor(min(most, count - base)) { body(base + $0) } }
            return
        }
        pthread_mutex_lock(callerLock)
        defer { pthread_mutex_unlock(callerLock) }
        withoutActuallyEscaping(body) { body in
            self.body = body
            completed.store(0, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> (2 * Self.chunkBits) &+ 1) & 0xFF_FFFF
            // store then load: sequentially consistent, so a worker going to sleep is seen
            state.store(generation << (2 * Self.chunkBits) | UInt64(count) << Self.chunkBits,
                        ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex); pthread_cond_broadcast(wake); pthread_mutex_unlock(mutex)
            }
            runChunks(of: generation)
            var spins = 0
            while completed.load(ordering: .acquiring) < count {
                spins += 1
                // a worker holding a chunk was preempted: give it the core
                if spins % 1024 == 0 { sched_yield() } else { spinPause() }
            }
            self.body = nil
        }
    }

    /// Claims and runs chunks of job `generation` until none is left.
    private func runChunks(of generation: UInt64) {
        while let i = claim(generation) {
            body!(i)
            completed.add(1, ordering: .releasing)
        }
    }

    private func claim(_ generation: UInt64) -> Int? {
        var s = state.load(ordering: .acquiring)
        while true {
            guard s >> (2 * Self.chunkBits) == generation else { return nil }
            let i = s & Self.chunkMask
            guard i < s >> Self.chunkBits & Self.chunkMask else { return nil }
            let (exchanged, current) = state.compareExchange(expected: s, desired: s + 1,
                                                              successOrdering: .acquiring, failureOrdering: .acquiring)
            if exchanged { return Int(i) }
            s = current
        }
    }

    private func workerLoop() {
        var seen: UInt64 = 0
        while true {
            var spins = 0
            while state.load(ordering: .acquiring) >> (2 * Self.chunkBits) == seen {
                spins += 1
                if spins < Self.spinLimit { spinPause(); continue }
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while state.load(ordering: .sequentiallyConsistent) >> (2 * Self.chunkBits) == seen { pthread_cond_wait(wake, mutex) }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
            }
            seen = state.load(ordering: .acquiring) >> (2 * Self.chunkBits)
            runChunks(of: seen)
        }
    }
}

@inline(__always) private func spinPause() { quill_cpu_relax() }
