import NIOCore
import RTSPProtocol
import Synchronization

/// Where one set-up track goes: channels on the RTSP connection, or a UDP
/// pair of the server's sockets aimed at the client's ports.
enum TrackTransport: Sendable {
    case interleaved(rtp: UInt8, rtcp: UInt8)
    case udp(UDPPair)

    var isUDP: Bool { if case .udp = self { true } else { false } }

    /// The interleaved channel the client's RTCP comes on, nil over UDP.
    var rtcpChannel: UInt8? { if case .interleaved(_, let rtcp) = self { rtcp } else { nil } }
}

/// The server's two sockets of one UDP track (even RTP port, odd RTCP
/// port) and the client's ports they send to.
struct UDPPair: Sendable {
    let rtp: any Channel
    let rtcp: any Channel
    let serverPort: Int
    let rtpDestination: SocketAddress
    let rtcpDestination: SocketAddress
}

/// One playing client: its queue and its sockets, touched only on its
/// connection's event loop. The publisher hands it packets with
/// ``deliver(_:)`` and returns at once; a client whose socket does not keep
/// up loses whole GOPs (``ClientQueue``), never delays anyone.
final class ClientOutput: @unchecked Sendable {
    let id: Int
    let stream: String
    let remote: String
    let connection: any Channel
    private let transports: [Int: TrackTransport]
    private let udp: Bool
    /// Bytes per 5 ms tick a UDP client is sent at most (the joiner's GOP is not burst).
    private let udpTickBytes: Int
    // Event loop only.
    private var queue: ClientQueue<RTPOut>
    private var closed = false
    private var pacing = false
    /// Counters read by metrics from any thread.
    let packetsSent = Atomic<UInt64>(0)
    let bytesSent = Atomic<UInt64>(0)
    let gopsDropped = Atomic<UInt64>(0)
    let packetsDropped = Atomic<UInt64>(0)
    /// Bytes waiting in the queue, stored once per batch, write or tick (a gauge, not a per-packet cost).
    let queuedBytes = Atomic<Int>(0)

    /// `udp` when any track goes over UDP (a client picks one transport for its tracks), else `tcp`.
    var transportName: String { udp ? "udp" : "tcp" }

    init(id: Int, stream: String, remote: String, connection: any Channel, transports: [Int: TrackTransport],
         queueLimit: Int, udpRate: Int, gated: Bool, trackCount: Int) {
        self.id = id
        self.stream = stream
        self.remote = remote
        self.connection = connection
        self.transports = transports
        udp = transports.values.contains { $0.isUDP }
        udpTickBytes = max(udpRate / 200, 1)
        queue = ClientQueue(limit: queueLimit, waitingForGOP: gated)
        self.gated = gated
        wholeStream = !udp && (0..<trackCount).allSatisfy { track in
            if case .interleaved(let rtp, _)? = transports[track] { return Int(rtp) == 2 * track }
            return false
        } && transports.count == trackCount
    }

    private let gated: Bool
    /// Every track of the stream, interleaved on channels 2N and 2N+1.
    private let wholeStream: Bool

    /// Hands a fragment's packets to this client (from any thread).
    func deliver(_ batch: RTPBatch) {
        guard !batch.packets.isEmpty else { return }
        connection.eventLoop.execute { self.take(batch) }
    }

    /// On the event loop: a client that takes the whole stream on the default channels and keeps up is written
    /// the fragment in one write of the shared buffer; otherwise packet by packet through its queue.
    private func take(_ batch: RTPBatch) {
        guard !closed else { return }
        guard wholeStream, queue.isEmpty, !queue.waitingForGOP, connection.isWritable else {
            enqueue(batch.packets)
            return
        }
        connection.writeAndFlush(batch.joined, promise: nil)
        packetsSent.add(UInt64(batch.packets.count), ordering: .relaxed)
        bytesSent.add(UInt64(batch.joined.readableBytes), ordering: .relaxed)
    }

    /// On the event loop: queues each packet and writes what the socket takes as it goes, so the queue holds
    /// only what the client has not taken (never a whole fragment's burst that a fast client would take at once).
    func enqueue(_ packets: [RTPOut]) {
        guard !closed else { return }
        let droppedGOPs = queue.gopsDropped, droppedPackets = queue.packetsDropped
        var written: (packets: UInt64, bytes: UInt64) = (0, 0)
        for packet in packets where transports[packet.track] != nil {
            queue.push(packet, size: packet.size, startsGOP: gated ? packet.startsGOP : true)
            if udp {
                if !pacing { sendUDPTick() }
            } else {
                writeWhileWritable(&written)
            }
        }
        if !udp { finishWrites(written) }
        if queue.gopsDropped != droppedGOPs { gopsDropped.add(queue.gopsDropped - droppedGOPs, ordering: .relaxed) }
        if queue.packetsDropped != droppedPackets {
            packetsDropped.add(queue.packetsDropped - droppedPackets, ordering: .relaxed)
        }
        queuedBytes.store(queue.bytes, ordering: .relaxed)
    }

    /// On the event loop: writes what the socket takes now (its writability came back).
    func drain() {
        guard !closed else { return }
        if udp {
            if !pacing { sendUDPTick() }
            return
        }
        var written: (packets: UInt64, bytes: UInt64) = (0, 0)
        writeWhileWritable(&written)
        finishWrites(written)
        queuedBytes.store(queue.bytes, ordering: .relaxed)
    }

    /// Writes queued packets while NIO's buffer is under its high-water mark; flushes when it is reached, so the
    /// bytes move and writability comes back.
    private func writeWhileWritable(_ written: inout (packets: UInt64, bytes: UInt64)) {
        while connection.isWritable, let packet = queue.pop() {
            guard case .interleaved(let channel, _) = transports[packet.track] else { continue }
            connection.write(packet.framed(channel: channel), promise: nil)
            written.packets += 1
            written.bytes += UInt64(packet.size)
        }
        if !connection.isWritable { connection.flush() }
    }

    private func finishWrites(_ written: (packets: UInt64, bytes: UInt64)) {
        guard written.packets > 0 else { return }
        connection.flush()
        packetsSent.add(written.packets, ordering: .relaxed)
        bytesSent.add(written.bytes, ordering: .relaxed)
    }

    private func sendUDPTick() {
        var budget = udpTickBytes
        var packets: UInt64 = 0, bytes: UInt64 = 0
        var used: [ObjectIdentifier: any Channel] = [:]
        while budget > 0, let packet = queue.pop() {
            guard case .udp(let pair) = transports[packet.track] else { continue }
            let rtp = packet.rtp
            pair.rtp.write(AddressedEnvelope(remoteAddress: pair.rtpDestination, data: rtp), promise: nil)
            used[ObjectIdentifier(pair.rtp)] = pair.rtp
            budget -= rtp.readableBytes
            packets += 1
            bytes += UInt64(rtp.readableBytes)
        }
        for channel in used.values { channel.flush() }
        queuedBytes.store(queue.bytes, ordering: .relaxed)
        packetsSent.add(packets, ordering: .relaxed)
        bytesSent.add(bytes, ordering: .relaxed)
        // The tick's budget is spent (or the queue is empty): the next packets wait for the next tick, so a
        // burst (a joiner's GOP, a whole fragment) leaves at the rate, never at once.
        guard packets > 0 else { return }
        pacing = true
        connection.eventLoop.scheduleTask(in: .milliseconds(5)) { [self] in
            pacing = false
            if !queue.isEmpty { drain() }
        }
    }

    /// Sends an RTCP packet for `track` beside the RTP (sender reports).
    func sendControl(track: Int, _ packet: ByteBuffer) {
        connection.eventLoop.execute { [self] in
            guard !closed, let transport = transports[track] else { return }
            switch transport {
            case .interleaved(_, let rtcp):
                var framed = ByteBuffer()
                _ = RTSPInterleaved.writeHeader(channel: rtcp, length: packet.readableBytes, into: &framed)
                framed.writeImmutableBuffer(packet)
                connection.writeAndFlush(framed, promise: nil)
            case .udp(let pair):
                pair.rtcp.writeAndFlush(AddressedEnvelope(remoteAddress: pair.rtcpDestination, data: packet), promise: nil)
            }
        }
    }

    /// Stops sending (TEARDOWN, the connection closed); with `closeConnection` the RTSP connection goes too.
    func stop(closeConnection: Bool) {
        connection.eventLoop.execute { [self] in
            closed = true
            while queue.pop() != nil {}
            queuedBytes.store(0, ordering: .relaxed)
            if closeConnection { connection.close(promise: nil) }
        }
    }
}
