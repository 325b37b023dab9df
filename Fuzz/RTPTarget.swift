import NIOCore
import RTP

/// The RTP payload layer: the input's first byte picks how the rest is read
/// (bit 0-1: H.264, H.265 or AAC; bit 2: whole RTP packets or bare payloads
/// under made-up headers; bit 3: through the sequence tracker; bit 7: a
/// packetize-then-depacketize round trip that must give back the same units);
/// then packets follow, each behind a 2-byte length. Whatever comes in is
/// refused or read within the bounds; nothing traps.
func fuzzRTP(_ bytes: UnsafeRawBufferPointer) {
    var input = ByteBuffer(bytes: bytes)
    guard let mode = input.readInteger(as: UInt8.self) else { return }
    if mode & 0x80 != 0 { return fuzzRTPRoundTrip(mode: mode, input) }
    let codec = mode & 3
    let bare = mode & 4 != 0
    let tracked = mode & 8 != 0
    let limits = NALDepacketizer.Configuration(maxFrameSize: 16 * 1024, maxUnitsPerFrame: 64)
    var video = NALDepacketizer(codec: codec == 1 ? .h265 : .h264, configuration: limits)
    var audio = AACDepacketizer()
    var tracker = RTPSequenceTracker(window: 8)
    var unwrapper = RTPTimestampUnwrapper()
    var sequence: UInt16 = 0
    func feed(_ packet: RTPPacket) {
        _ = unwrapper.unwrap(packet.header.timestamp)
        if codec == 2 || codec == 3 {
            for case .accessUnit(let unit) in audio.push(packet) {
                precondition(unit.data.readableBytes <= AACPacketizer.maxUnitSize, "an AAC unit past 8191 bytes")
            }
        } else {
            for case .accessUnit(let unit) in video.push(packet) {
                precondition(unit.size <= limits.maxFrameSize && unit.nalUnits.count <= limits.maxUnitsPerFrame,
                             "a frame past its bounds")
            }
        }
    }
    while let length = input.readInteger(as: UInt16.self), let chunk = input.readSlice(length: min(Int(length),
                                                                                                   input.readableBytes)) {
        let packet: RTPPacket
        if bare {
            guard let flags = chunk.getInteger(at: chunk.readerIndex, as: UInt8.self) else { continue }
            // The flags byte: marker, a skipped sequence number, a new timestamp.
            sequence &+= flags & 2 != 0 ? 2 : 1
            let payload = chunk.getSlice(at: chunk.readerIndex + 1, length: chunk.readableBytes - 1) ?? ByteBuffer()
            packet = RTPPacket(header: RTPHeader(marker: flags & 1 != 0, payloadType: 96, sequenceNumber: sequence,
                                                 timestamp: UInt32(flags >> 2) &* 3000, ssrc: 1), payload: payload)
        } else {
            guard let parsed = try? RTPPacket(parsing: chunk) else { continue }
            var again = parsed
            again.header.padding = false
            guard let written = try? again.bytes(), let reread = try? RTPPacket(parsing: written), reread == again else {
                fatalError("an RTP packet camflow accepted does not read back once written")
            }
            packet = parsed
        }
        if tracked {
            for case .packet(let released, _) in tracker.push(packet) { feed(released) }
        } else {
            feed(packet)
        }
    }
    for case .packet(let released, _) in tracker.flush() { feed(released) }
    _ = video.flush()
}

/// Units cut from the input (1-byte lengths) go through the packetizer at a
/// small MTU and back: the depacketizer must give exactly them.
private func fuzzRTPRoundTrip(mode: UInt8, _ input: ByteBuffer) {
    var input = input
    let codec: RTPVideoCodec = mode & 1 == 0 ? .h264 : .h265
    let mtu = 16 + Int(mode & 0x3E)
    var units: [ByteBuffer] = []
    while let length = input.readInteger(as: UInt8.self), var unit = input.readSlice(length: min(Int(length) * 4,
                                                                                                 input.readableBytes)) {
        guard unit.readableBytes > 2 else { continue }
        // A first byte a sender could not put in a single-unit packet becomes an IDR / IRAP header.
        var first = unit.getInteger(at: unit.readerIndex, as: UInt8.self) ?? 0
        first = codec == .h264 ? first & 0x80 | 0x65 : first & 0x81 | 19 << 1
        unit.setInteger(first, at: unit.readerIndex)
        units.append(unit)
    }
    guard !units.isEmpty else { return }
    if mode & 0x40 != 0 {
        guard let aac = try? AACPacketizer(mtu: 32 + Int(mode & 0x3F)), let payloads = try? aac.packetize(accessUnits: units)
        else { fatalError("AAC units of at most 1020 bytes were refused") }
        var depacketizer = AACDepacketizer()
        var out: [ByteBuffer] = []
        for (index, payload) in payloads.enumerated() {
            let header = RTPHeader(marker: payload.marker, payloadType: 97, sequenceNumber: UInt16(truncatingIfNeeded: index),
                                   timestamp: payload.timestampOffset, ssrc: 1)
            for case .accessUnit(let unit) in depacketizer.push(RTPPacket(header: header, payload: payload.bytes)) {
                out.append(unit.data)
            }
        }
        precondition(out == units, "AAC units changed on their way through RTP")
        return
    }
    guard let packetizer = try? NALPacketizer(codec: codec, configuration: .init(mtu: mtu, aggregate: mode & 0x40 != 0)),
          let payloads = try? packetizer.packetize(nalUnits: units) else {
        fatalError("units of at least 3 bytes were refused")
    }
    var depacketizer = NALDepacketizer(codec: codec)
    var out: [ByteBuffer] = []
    for (index, payload) in payloads.enumerated() {
        precondition(payload.count <= mtu - 12, "a payload larger than the MTU allows")
        let header = RTPHeader(marker: payload.marker, payloadType: 96, sequenceNumber: UInt16(truncatingIfNeeded: index),
                               timestamp: 0, ssrc: 1)
        for event in depacketizer.push(RTPPacket(header: header, payload: payload.bytes)) {
            switch event {
            case .accessUnit(let unit): out += unit.nalUnits
            case .dropped(let drop): fatalError("a frame camflow packetized was dropped: \(drop)")
            }
        }
    }
    precondition(out == units, "NAL units changed on their way through RTP")
}
