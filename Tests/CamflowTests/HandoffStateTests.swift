@testable import Camflow
import NIOCore
import Testing

/// The queue node's handoff and the one-shot signal, without tasks:
/// waiters are plain integers, and each step says whom to wake.
@Suite struct HandoffStateTests {
    func packet(_ n: UInt64) -> Packet {
        Packet(kind: .bytes, stream: "s", sequence: n, payload: ByteBuffer(repeating: 0, count: 4))
    }

    @Test func queue_aWaitingTakerIsWokenByTheNextOffer_once() {
        var machine = QueueStateMachine<Int>(QueueBuffer(limits: .init(packets: 2), policy: .block))
        guard case .wait = machine.take() else { Issue.record("an empty queue makes the taker wait"); return }
        let parked = machine.waitForPackets(7)
        #expect(parked == nil, "the taker parks")
        guard case .accepted(0, let taker) = machine.offer(packet(1)) else { Issue.record("offer should be stored"); return }
        #expect(taker == 7)
        guard case .accepted(0, let second) = machine.offer(packet(2)) else { Issue.record("offer should be stored"); return }
        #expect(second == nil, "a taker is woken once")
    }

    @Test func queue_aFullOffererWaitsUntilATake_thenIsWoken() {
        var machine = QueueStateMachine<Int>(QueueBuffer(limits: .init(packets: 1), policy: .block))
        guard case .accepted = machine.offer(packet(1)) else { Issue.record("first offer fits"); return }
        guard case .full = machine.offer(packet(2)) else { Issue.record("block: the second finds it full"); return }
        let parked = machine.waitForRoom(3)
        #expect(parked == nil, "the offerer parks while the queue holds a packet")
        guard case .packet(let taken, let offerer) = machine.take() else { Issue.record("a packet is there"); return }
        #expect(taken.sequence == 1)
        #expect(offerer == 3)
    }

    @Test func queue_endOfInput_wakesTheTaker_andEndsAfterTheLastPacket() {
        var machine = QueueStateMachine<Int>(QueueBuffer(limits: .init(packets: 4), policy: .block))
        _ = machine.offer(packet(1))
        let woken = machine.finishInput()
        #expect(woken == nil)
        guard case .packet = machine.take() else { Issue.record("queued packets drain after the end"); return }
        guard case .end = machine.take() else { Issue.record("then the queue ends"); return }
        let returned = machine.waitForPackets(5)
        #expect(returned == 5, "a taker arriving after the end is not parked")
    }

    @Test func oneShot_firesOnce_releasingEveryParkedWaiter() {
        var state = OneShotState<Int>()
        let a = state.reserveID(), b = state.reserveID()
        let first = state.park(10, id: a, cancelled: false), second = state.park(20, id: b, cancelled: false)
        #expect(first && second)
        let released = state.fire()
        #expect(released.sorted() == [10, 20])
        let again = state.fire()
        #expect(again.isEmpty, "a second fire releases nobody")
        let late = state.reserveID()
        let parkedLate = state.park(30, id: late, cancelled: false)
        #expect(!parkedLate, "after the fire nobody waits")
    }

    @Test func oneShot_cancellationBeforeParking_isNotLost() {
        var state = OneShotState<Int>()
        let id = state.reserveID()
        let cancelled = state.cancel(id: id)
        #expect(cancelled == nil, "nothing parked yet")
        let parked = state.park(10, id: id, cancelled: false)
        #expect(!parked, "the waiter cancelled before it parked returns at once")
        let released = state.fire()
        #expect(released.isEmpty)
    }

    @Test func oneShot_cancellationOfAParkedWaiter_returnsIt() {
        var state = OneShotState<Int>()
        let id = state.reserveID()
        let parked = state.park(10, id: id, cancelled: false)
        #expect(parked)
        let cancelled = state.cancel(id: id)
        #expect(cancelled == 10)
        let released = state.fire()
        #expect(released.isEmpty)
    }
}
