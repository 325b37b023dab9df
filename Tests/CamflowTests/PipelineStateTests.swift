@testable import Camflow
import Testing

/// The pipeline's shared state and an output's wiring, driven without
/// tasks: each change says what to do, and impossible ones are refused.
@Suite struct PipelineStateTests {
    private static let registry = TestNodes.registry(TestNodes.source(count: 1), TestNodes.sink(received: Shared([])))

    private static func graph(_ sinks: [String]) throws -> PipelineGraph {
        try GraphValidator(registry: registry).validate(PipelineSpec(name: "state", nodes:
            [NodeSpec(id: "src", type: "test-source")] + sinks.map { NodeSpec(id: $0, type: "test-sink", inputs: ["src"]) }))
    }

    private static func state(_ sinks: [String]) throws -> PipelineState {
        let graph = try graph(sinks)
        return PipelineState(graph: graph, runtime: graph.nodes.map { RuntimeNode(node: $0) })
    }

    private static func refuses(_ state: inout PipelineState, _ graph: PipelineGraph) -> Bool {
        do {
            _ = try state.beginReload(to: graph)
            return false
        } catch {
            return true
        }
    }

    @Test func aReload_isPlannedThenCommitted_andStopsWhatItReplaces() throws {
        var state = try Self.state(["a"])
        guard case .apply(let plan) = try state.beginReload(to: try Self.graph(["a", "b"])) else {
            Issue.record("a new sink is a change")
            return
        }
        #expect(plan.diff.added == ["b"] && plan.fresh.map { plan.runtime[$0].node.spec.id } == ["b"])
        // New instances are rewired before kept ones.
        #expect(plan.rewires.first?.output === plan.runtime[plan.fresh[0]].output)
        // Not in place until committed: the graph is the old one, and a second reload waits its turn.
        #expect(state.graph.nodes.count == 2)
        let refused = Self.refuses(&state, try Self.graph(["c"]))
        #expect(refused)
        let commit = state.commitReload()
        #expect(state.graph.nodes.count == 3 && state.reloadCount == 1 && commit.started.map(\.node.spec.id) == ["b"])
        #expect(commit.stops.isEmpty, "nothing replaced, nothing stopped")
        // Its nodes are on their way: the run may not end until the run loop takes them.
        let endedEarly = state.endIfIdle()
        #expect(endedEarly == nil)
        state.takeStarted()
        let ended = state.endIfIdle()
        #expect(ended != nil)
        let refusedAfterTheEnd = Self.refuses(&state, try Self.graph([]))
        #expect(refusedAfterTheEnd)
    }

    @Test func aStopDuringAReload_reachesTheSourcesItStarts() throws {
        var state = try Self.state(["a"])
        let changed = try GraphValidator(registry: Self.registry).validate(PipelineSpec(name: "state", nodes: [
            NodeSpec(id: "src", type: "test-source", capacity: 4), NodeSpec(id: "a", type: "test-sink", inputs: ["src"]),
        ]))
        guard case .apply = try state.beginReload(to: changed) else {
            Issue.record("a changed source is a change")
            return
        }
        let first = state.requestStop(), second = state.requestStop()
        #expect(first && !second, "once")
        let commit = state.commitReload()
        // The old source and the new one both stop: the new one never runs after the stop.
        #expect(commit.stops.count == 2)
        let refused = Self.refuses(&state, try Self.graph(["a"]))
        #expect(refused)
    }

    @Test func anUnchangedGraph_isNoReload_andSubscribersGetTheLastOne() throws {
        var state = try Self.state(["a"])
        guard case .unchanged(let diff) = try state.beginReload(to: try Self.graph(["a"])) else {
            Issue.record("the same graph changes nothing")
            return
        }
        #expect(diff.isEmpty && state.reloadCount == 0)
        let (_, continuation) = AsyncStream.makeStream(of: GraphDiff.self)
        let (id, last) = state.subscribe(continuation)
        #expect(id != nil && last == nil)
        let finished = state.end()
        #expect(finished.count == 1)
        let late = state.subscribe(continuation)
        #expect(late.id == nil, "no subscriber after the end")
    }

    @Test func outputWiring_attachesNewEdges_andEndsTheOnesLeftOnce() {
        let first = Inbox(lanes: 1, capacity: 4), second = Inbox(lanes: 1, capacity: 4)
        let a = OutputWiring.Target(inbox: first, lane: 0, accepts: .all)
        let b = OutputWiring.Target(inbox: second, lane: 0, accepts: .all)
        var wiring = OutputWiring(targets: [a])
        let newcomers = wiring.newcomers(in: [b])
        #expect(newcomers.count == 1 && newcomers[0].isSameEdge(as: b))
        guard case .applied = wiring.rewire(to: [b], attached: newcomers) else {
            Issue.record("a running output is rewired")
            return
        }
        let changes = wiring.takeChanges()
        #expect(changes.version == 1 && changes.joined.count == 1 && changes.targets[0].isSameEdge(as: b))
        let again = wiring.takeChanges()
        #expect(again.joined.isEmpty, "the init segments go to a joined edge once")
        let left = wiring.takeDetached(), leftAgain = wiring.takeDetached()
        #expect(left.map { $0.isSameEdge(as: a) } == [true] && leftAgain.isEmpty)
        let ending = wiring.finish(), endingAgain = wiring.finish()
        #expect(ending.count == 1 && endingAgain.isEmpty)
        guard case .alreadyFinished(let endNow) = wiring.rewire(to: [a], attached: [a]) else {
            Issue.record("a finished output is not rewired")
            return
        }
        #expect(endNow.count == 1)
    }

    @Test func impossibleTransitions_trap() async {
        // A commit without a reload begun, and more starts taken than made: bugs, not states.
        await #expect(processExitsWith: .failure) {
            var state = try PipelineStateTests.state(["a"])
            _ = state.commitReload()
        }
        await #expect(processExitsWith: .failure) {
            var state = try PipelineStateTests.state(["a"])
            state.takeStarted()
        }
    }
}
