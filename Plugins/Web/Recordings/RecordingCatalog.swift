import Camflow
import Logging
import Synchronization

/// Each root's index, read on a thread of its own (``BlockingIOThread``) and kept until the file
/// changes (device, inode, size, modification or change time), so a page
/// refreshing every few seconds costs an `lstat`, not a parse. Requests
/// that arrive while an index is being read wait for that one read
/// (single flight): a large index is parsed once, not once per request.
final class RecordingCatalog: Sendable {
    private enum State {
        case ready(RecordingIndex.Identity, [RecordingIndexEntry])
        case loading(RecordingIndex.Identity, Task<RecordingIndex.Contents, any Error>)
    }

    private let states = Mutex<[String: State]>([:])
    private let logger: Logger
    let maxBytes: Int
    /// Index reads started, for tests of the single flight.
    let reads = Atomic<Int>(0)

    init(logger: Logger, maxBytes: Int = RecordingIndex.maxReadBytes) {
        self.logger = logger
        self.maxBytes = maxBytes
    }

    /// The entries of `root`'s index; none when it has no index yet. An
    /// index that exists but cannot be read throws, never reads as empty.
    func entries(root: String) async throws -> [RecordingIndexEntry] {
        let found: RecordingIndex.Identity?
        do {
            found = try await BlockingIOThread.run(name: "recordings-index") { try RecordingIndex.identity(root: root) }
        } catch {
            logger.error("\(error)")
            throw error
        }
        guard let identity = found else {
            states.withLock { $0[root] = nil }
            return []
        }
        enum Next {
            case done([RecordingIndexEntry])
            case wait(Task<RecordingIndex.Contents, any Error>)
        }
        let next = states.withLock { states -> Next in
            switch states[root] {
            case .ready(let known, let entries) where known == identity:
                return .done(entries)
            case .loading(let known, let task) where known == identity:
                return .wait(task)
            default:
                reads.add(1, ordering: .relaxed)
                let maxBytes = self.maxBytes
                let task = Task {
                    try await BlockingIOThread.run(name: "recordings-index") { try RecordingIndex.load(root: root, maxBytes: maxBytes) }
                }
                states[root] = .loading(identity, task)
                return .wait(task)
            }
        }
        let task: Task<RecordingIndex.Contents, any Error>
        switch next {
        case .done(let entries): return entries
        case .wait(let waited): task = waited
        }
        do {
            let contents = try await task.value
            let stored = states.withLock { states -> Bool in
                guard case .loading(let known, _) = states[root], known == identity else { return false }
                states[root] = .ready(contents.identity, contents.entries)
                return true
            }
            if stored, contents.skippedBytes > 0 {
                logger.error("recordings index '\(root)/\(RecordingIndex.fileName)' is \(contents.identity.size) bytes, more than the \(maxBytes >> 20) MiB read: its oldest \(contents.skippedBytes) bytes are not listed")
            }
            // Once per version of the index (the reader that stored it): what is not listed, and why.
            if stored, contents.unreadLines > 0 {
                logger.warning("recordings index '\(root)/\(RecordingIndex.fileName)': \(contents.unreadLines) lines are not entries below the root and are not listed")
            }
            if stored, contents.unchecked > 0 {
                logger.error("recordings index '\(root)/\(RecordingIndex.fileName)': \(contents.unchecked) recordings could not be checked and are not listed: \(UntrustedText.printable(contents.uncheckedReason ?? "", limit: 512))")
            }
            return contents.entries
        } catch {
            let first = states.withLock { states -> Bool in
                guard case .loading(let known, _) = states[root], known == identity else { return false }
                states[root] = nil
                return true
            }
            if first { logger.error("\(error)") }
            throw error
        }
    }
}
