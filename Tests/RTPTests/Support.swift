import Foundation
import NIOCore
import RTP

let fixturesDirectory: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent("Tests/Fixtures")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
    }
    return URL(fileURLWithPath: "Tests/Fixtures")
}()

/// A NAL unit of `size` bytes: the given header, then a counting pattern.
func nalUnit(_ header: [UInt8], size: Int) -> ByteBuffer {
    var unit = ByteBuffer(bytes: header)
    unit.writeBytes((0..<max(0, size - header.count)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
    return unit
}

/// A frame in MP4 sample form: each unit behind a 4-byte length.
func lengthPrefixed(_ units: [ByteBuffer]) -> ByteBuffer {
    var out = ByteBuffer()
    for unit in units {
        out.writeInteger(UInt32(unit.readableBytes))
        out.writeImmutableBuffer(unit)
    }
    return out
}

/// RTP packets (parsed back from their bytes) of payloads, from `sequence`, at `timestamp`.
func packets(_ payloads: [RTPPayload], sequence: UInt16 = 0, timestamp: UInt32 = 1000) throws -> [RTPPacket] {
    try payloads.enumerated().map { index, payload in
        let header = RTPHeader(payloadType: 96, sequenceNumber: sequence &+ UInt16(truncatingIfNeeded: index),
                               timestamp: timestamp &+ payload.timestampOffset, ssrc: 7)
        return try RTPPacket(parsing: payload.packet(header: header))
    }
}

/// Pushes packets and collects what came out.
func depacketize(_ depacketizer: inout NALDepacketizer, _ packets: [RTPPacket])
    -> (units: [RTPAccessUnit], drops: [RTPDrop]) {
    var units: [RTPAccessUnit] = []
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

func bytes(_ buffers: [ByteBuffer]) -> [[UInt8]] { buffers.map { Array($0.readableBytesView) } }
