/// CRC-32 as zlib computes it (ISO-HDLC: reflected polynomial 0xEDB88320,
/// initial and final XOR 0xFFFFFFFF), for STUN's FINGERPRINT. Neither
/// swift-nio nor swift-crypto exposes one.
public struct CRC32: Sendable {
    public private(set) var value: UInt32 = 0

    public init() {}

    private var state: UInt32 = 0xFFFF_FFFF

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc >> 8) }
        }
        state = crc
        value = crc ^ 0xFFFF_FFFF
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc >> 8) }
        }
        state = crc
        value = crc ^ 0xFFFF_FFFF
    }

    /// The CRC of `bytes` alone.
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }

    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        return crc
    }
}
