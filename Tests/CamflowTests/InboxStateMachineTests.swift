@testable import Camflow
import NIOCore
import Testing

/// The edge logic without tasks: waiters are plain integers.
@Suite struct InboxStateMachineTests {
    typealias Machine = InboxStateMachine<Int>

    func packet(_ n: UInt64, bytes: Int = 4) -> Packet {
        Packet(kind: .bytes, stream: "s", sequence: n, payload: ByteBuffer(repeating: 0, count: bytes))
    }

    @Test func laneHoldsAtMostItsCapacity() {
        var machine = Machine(lanes: 1, capacity: 3)
        for n in 0..<3 {
            guard case .stored = machine.push(packet(UInt64(n)), lane: 0) else {
                Issue.record("push \(n) should be stored")
                return
            }
        }
        guard case .full = machine.push(packet(3), lane: 0) else {
            Issue.record("a fourth packet should find the lane full")
            return
        }
        #expect(machine.lanes[0].depth == 3)
        #expect(machine.lanes[0].maxDepth == 3)
    }

    @Test func fullLaneDoesNotBlockOtherLanes() {
        var machine = Machine(lanes: 2, capacity: 1)
        _ = machine.push(packet(0), lane: 0)
        guard case .full = machine.push(packet(1), lane: 0), case .stored = machine.push(packet(2), lane: 1) else {
            Issue.record("lane 1 should have room while lane 0 is full")
            return
        }
    }

    @Test func popWakesTheWaitingProducerAndKeepsArrivalOrder() {
        var machine = Machine(lanes: 2, capacity: 1)
        _ = machine.push(packet(0), lane: 0)
        _ = machine.push(packet(1), lane: 1)
        #expect(machine.waitForRoom(lane: 0, 42) == nil, "the producer should wait")
        var batch: [Packet] = []
        var wake: [Int] = []
        guard case .batch = machine.pop(into: &batch, limit: 10, wake: &wake) else {
            Issue.record("expected a batch")
            return
        }
        #expect(batch.map(\.sequence) == [0, 1])
        #expect(wake == [42])
    }

    @Test func aProducerWaitingForATake_isWokenByThePop_andDoesNotWaitOnAnEmptyLane() {
        var machine = Machine(lanes: 1, capacity: 4)
        #expect(machine.waitForTake(lane: 0, 5) == 5, "nothing queued: nothing to wait for")
        _ = machine.push(packet(0), lane: 0)
        #expect(machine.waitForTake(lane: 0, 5) == nil)
        var batch: [Packet] = []
        var wake: [Int] = []
        _ = machine.pop(into: &batch, limit: 10, wake: &wake)
        #expect(wake == [5])
    }

    @Test func waitingConsumerIsWokenByPush() {
        var machine = Machine(lanes: 1, capacity: 2)
        #expect(machine.waitForPackets(7) == nil)
        guard case .stored(let consumer) = machine.push(packet(0), lane: 0) else {
            Issue.record("expected stored")
            return
        }
        #expect(consumer == 7)
    }

    @Test func endOfStreamOnlyWhenEveryLaneFinishedAndDrained() {
        var machine = Machine(lanes: 2, capacity: 2)
        _ = machine.push(packet(0), lane: 1)
        #expect(machine.finish(lane: 0) == nil)
        var batch: [Packet] = []
        var wake: [Int] = []
        guard case .batch = machine.pop(into: &batch, limit: 10, wake: &wake) else {
            Issue.record("the queued packet comes first")
            return
        }
        guard case .wait = machine.pop(into: &batch, limit: 10, wake: &wake) else {
            Issue.record("lane 1 is still open")
            return
        }
        #expect(machine.waitForPackets(9) == nil)
        #expect(machine.finish(lane: 1) == 9, "the last finish wakes the consumer")
        guard case .endOfStream = machine.pop(into: &batch, limit: 10, wake: &wake) else {
            Issue.record("expected end of stream")
            return
        }
    }

    @Test func discardingCountsDropsAndReleasesProducers() {
        var machine = Machine(lanes: 1, capacity: 1)
        _ = machine.push(packet(0), lane: 0)
        #expect(machine.waitForRoom(lane: 0, 5) == nil)
        var wake: [Int] = []
        machine.discardAll(wake: &wake)
        #expect(wake == [5])
        guard case .discarded = machine.push(packet(1), lane: 0) else {
            Issue.record("a stopped consumer accepts nothing")
            return
        }
        #expect(machine.lanes[0].discarded == 2)
    }

    @Test func aRunOfPackets_fillsTheLane_wakesTheConsumerOnce_andTheRestWaitsForRoom() {
        var machine = Machine(lanes: 1, capacity: 3)
        let parked = machine.waitForPackets(7)
        #expect(parked == nil)
        let run = (0..<5).map { packet(UInt64($0)) }
        var next = 0
        guard case .full(let consumer) = machine.push(contentsOf: run, from: &next, lane: 0) else {
            Issue.record("five packets cannot fit a lane of three")
            return
        }
        #expect(consumer == 7, "the waiting consumer is woken so it drains the lane")
        #expect(next == 3)
        #expect(machine.lanes[0].depth == 3 && machine.lanes[0].maxDepth == 3)
        let room = machine.waitForRoom(lane: 0, 1)
        #expect(room == nil, "the producer waits for room")
        var batch: [Packet] = [], wake: [Int] = []
        _ = machine.pop(into: &batch, limit: 2, wake: &wake)
        #expect(wake == [1])
        guard case .stored(let again) = machine.push(contentsOf: run, from: &next, lane: 0) else {
            Issue.record("the rest fits after two were taken")
            return
        }
        #expect(again == nil, "nobody waits: nobody to wake")
        _ = machine.pop(into: &batch, limit: 10, wake: &wake)
        #expect(batch.map(\.sequence) == [0, 1, 2, 3, 4], "one run, in order")
        #expect(machine.lanes[0].packetsIn == 5)
    }
}
