import Synchronization

/// The node API's rule "one task at a time", checked: a node's output (or
/// input) keeps per-task state without a lock, so a plugin that emits from
/// two tasks at once would corrupt it silently. In debug builds, entering
/// while another task is inside traps with a message that names the node;
/// release builds check nothing, so the packet path pays nothing.
final class OwnerCheck: Sendable {
    #if DEBUG
    private let inside = Atomic<Bool>(false)
    #endif
    private let node: String
    private let what: String

    init(node: String, what: String) {
        self.node = node
        self.what = what
    }

    @inline(__always)
    func enter() {
        #if DEBUG
        guard inside.exchange(true, ordering: .acquiring) == false else {
            preconditionFailure("node '\(node)' \(what) from two tasks at once; a node's input and output are for one task at a time")
        }
        #endif
    }

    @inline(__always)
    func leave() {
        #if DEBUG
        inside.store(false, ordering: .releasing)
        #endif
    }
}
