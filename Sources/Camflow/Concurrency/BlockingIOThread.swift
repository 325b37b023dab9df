import DequeModule
import Foundation

/// A thread of its own that runs a task's jobs: the place for blocking
/// system calls. Swift's cooperative pool has one thread per core; a node
/// that blocks in `read`, `write` or `fsync` there takes a core's worth of
/// every other node's time with it. Under ``run(name:_:)`` (a task executor
/// preference, SE-0417) the body and its child tasks run here instead, and
/// only they wait for the disk.
public final class BlockingIOThread: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `stopping` are touched only under `condition`.
    private let condition = NSCondition()
    private var jobs = Deque<UnownedJob>()
    private var stopping = false

    private init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` with its jobs on a new thread named `name`, which ends
    /// when `body` has returned.
    public static func run<T: Sendable>(name: String, _ body: () async throws -> T) async rethrows -> T {
        let thread = BlockingIOThread(name: name)
        defer { thread.finish() }
        return try await withTaskExecutorPreference(thread) { try await body() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Lets the thread end once it has run what is queued.
    private func finish() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        var batch = Deque<UnownedJob>()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            swap(&batch, &jobs)
            condition.unlock()
            while let job = batch.popFirst() { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
