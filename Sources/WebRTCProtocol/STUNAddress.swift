public import NIOCore

/// A transport address as STUN carries it in XOR-MAPPED-ADDRESS: IPv4 or
/// IPv6 and a port, as plain integers (no socket types), so it hashes and
/// compares cheaply.
public struct STUNAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case ipv4, ipv6 }

    public let family: Family
    public let port: UInt16
    /// The address bytes in network order: IPv4 in the top 32 bits of `high`.
    public let high: UInt64
    public let low: UInt64

    public init(ipv4: UInt32, port: UInt16) {
        family = .ipv4
        self.port = port
        high = UInt64(ipv4) << 32
        low = 0
    }

    public init(ipv6High high: UInt64, low: UInt64, port: UInt16) {
        family = .ipv6
        self.port = port
        self.high = high
        self.low = low
    }

    public var ipv4: UInt32 { UInt32(truncatingIfNeeded: high >> 32) }

    /// The address bytes: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        let count = family == .ipv4 ? 4 : 16
        return (0..<count).map { index in
            let word = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: word >> (56 - 8 * UInt64(index % 8)))
        }
    }

    /// The address without the port, as a candidate line writes it: dotted
    /// IPv4, or IPv6 as eight hexadecimal groups (never compressed).
    public var host: String {
        let bytes = bytes
        if family == .ipv4 { return bytes.map { String($0) }.joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    public var description: String { family == .ipv4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    /// The address of a NIO socket address; nil for a Unix domain socket.
    public init?(_ address: SocketAddress) {
        guard let port = address.port, let value = UInt16(exactly: port) else { return nil }
        // sockaddr_in keeps the address at byte 4, sockaddr_in6 at byte 8, both in network order.
        let read: (family: Family, high: UInt64, low: UInt64)? = address.withSockAddr { pointer, size in
            let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: size)
            func word(_ at: Int, _ count: Int) -> UInt64 {
                raw[at..<(at + count)].reduce(0) { $0 << 8 | UInt64($1) }
            }
            switch address {
            case .v4 where size >= 8: return (.ipv4, word(4, 4) << 32, 0)
            case .v6 where size >= 24: return (.ipv6, word(8, 8), word(16, 8))
            default: return nil
            }
        }
        guard let read else { return nil }
        if read.family == .ipv4 {
            self.init(ipv4: UInt32(truncatingIfNeeded: read.high >> 32), port: value)
        } else {
            self.init(ipv6High: read.high, low: read.low, port: value)
        }
    }

    /// The NIO socket address for this one.
    public var socketAddress: SocketAddress {
        get throws { try SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: Int(port)) }
    }
}
