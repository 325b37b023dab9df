import NIOCore
import RTP
import Testing

@Suite struct AACTests {
    func depacketize(_ packets: [RTPPacket], into depacketizer: inout AACDepacketizer) -> ([RTPAudioUnit], [RTPDrop]) {
        var units: [RTPAudioUnit] = []
        var drops: [RTPDrop] = []
        for packet in packets {
            for event in depacketizer.push(packet) {
                switch event {
                case .accessUnit(let unit): units.append(unit)
                case .dropped(let drop): drops.append(drop)
                }
            }
        }
        return (units, drops)
    }

    @Test(arguments: [[1], [300, 200, 371], [1384, 1385, 8191], [400, 400, 400, 400, 400]])
    func accessUnits_roundTrip(_ sizes: [Int]) throws {
        let units = sizes.map { nalUnit([0x21], size: $0) }
        let payloads = try AACPacketizer().packetize(accessUnits: units)
        #expect(payloads.allSatisfy { $0.count <= 1388 })
        var depacketizer = AACDepacketizer()
        let (out, drops) = depacketize(try packets(payloads, sequence: 65535, timestamp: 0xFFFF_FC00), into: &depacketizer)
        #expect(drops.isEmpty)
        #expect(bytes(out.map(\.data)) == bytes(units))
        #expect(out.map(\.timestamp) == units.indices.map { 0xFFFF_FC00 &+ UInt32($0) * 1024 })
    }

    /// 5000 one-byte units fit a 64 KiB packet's bytes but not its 16-bit AU-headers-length.
    @Test func manyTinyUnits_splitAt4095Headers() throws {
        let units = (0..<5000).map { ByteBuffer(bytes: [UInt8(truncatingIfNeeded: $0)]) }
        let payloads = try AACPacketizer(mtu: 65535).packetize(accessUnits: units)
        #expect(payloads.count == 2)
        var depacketizer = AACDepacketizer()
        let (out, drops) = depacketize(try packets(payloads), into: &depacketizer)
        #expect(drops.isEmpty && bytes(out.map(\.data)) == bytes(units))
    }

    @Test func oversizedUnit_isRefused() {
        #expect(throws: RTPError.self) { try AACPacketizer().packetize(accessUnits: [nalUnit([1], size: 8192)]) }
    }

    func packet(_ payload: [UInt8], sequence: UInt16, marker: Bool = true, timestamp: UInt32 = 0) -> RTPPacket {
        RTPPacket(header: RTPHeader(marker: marker, payloadType: 97, sequenceNumber: sequence, timestamp: timestamp, ssrc: 1),
                  payload: ByteBuffer(bytes: payload))
    }

    @Test(arguments: [
        [UInt8]([0x00]),                          // no AU-headers-length
        [0x00, 0x00],                             // no AU headers
        [0x00, 0x0C, 0, 0],                       // 12 bits of headers
        [0x00, 0x20, 0x00, 0x10],                 // headers past the payload
        [0x00, 0x10, 0x00, 0x11, 1, 2],           // interleaving index 1
        [0x00, 0x20, 0x00, 0x10, 0x00, 0x18, 1, 2], // two units, 2 + 3 bytes declared, 2 present
        [0x00, 0x10, 0x00, 0x00],                 // a unit of 0 bytes
        [0x00, 0x10, 0x00, 0x50, 1, 2],           // a unit of 10 bytes, 2 present, marker set
    ]) func malformedPayloads_areDropped(_ payload: [UInt8]) {
        var depacketizer = AACDepacketizer()
        let (units, drops) = depacketize([packet(payload, sequence: 1)], into: &depacketizer)
        #expect(units.isEmpty && drops.count == 1)
    }

    @Test func lostFragment_dropsTheUnit() throws {
        let payloads = try AACPacketizer(mtu: 200).packetize(accessUnits: [nalUnit([1], size: 1000), nalUnit([2], size: 50)])
        var sent = try packets(payloads)
        let lastFragment = sent.firstIndex { $0.header.marker } ?? 0
        sent.remove(at: 2)
        var depacketizer = AACDepacketizer()
        let (units, drops) = depacketize(sent, into: &depacketizer)
        #expect(drops.map(\.reason) == [.sequenceGap(missing: 1)])
        #expect(units.map(\.data.readableBytes) == [50])
        #expect(lastFragment > 2)
    }

    @Test func fragmentWithoutEnd_isDropped() {
        var depacketizer = AACDepacketizer()
        let (units, drops) = depacketize([
            packet([0x00, 0x10, 0x00, 0x50, 1, 2], sequence: 1, marker: false),
            packet([0x00, 0x10, 0x00, 0x08, 7], sequence: 2, timestamp: 1024),
        ], into: &depacketizer)
        #expect(drops.map(\.reason) == [.fragmentWithoutEnd])
        #expect(units.map(\.timestamp) == [1024])
    }
}
