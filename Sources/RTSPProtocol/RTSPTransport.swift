/// One alternative of a `Transport` header (RFC 2326 §12.39): RTP over UDP
/// or interleaved on the RTSP connection, unicast, with its ports or
/// channels. Values a hostile peer could use to aim packets elsewhere or
/// exhaust a table are refused when read.
public struct RTSPTransport: Sendable, Equatable, CustomStringConvertible {
    /// RTP/AVP's lower transport.
    public enum Lower: Sendable, Equatable {
        case udp
        case tcp
    }

    public var lower: Lower
    public var unicast: Bool
    /// RTP's and RTCP's channels on the RTSP connection (`interleaved=a-b`).
    public var interleaved: ClosedRange<Int>?
    /// The client's RTP and RTCP ports (`client_port=a-b`).
    public var clientPort: ClosedRange<Int>?
    public var serverPort: ClosedRange<Int>?
    public var ssrc: UInt32?
    /// `mode=play` or absent (play is the default); recording is not served.
    public var modePlay: Bool

    public init(lower: Lower, unicast: Bool = true, interleaved: ClosedRange<Int>? = nil, clientPort: ClosedRange<Int>? = nil,
                serverPort: ClosedRange<Int>? = nil, ssrc: UInt32? = nil, modePlay: Bool = false) {
        self.lower = lower
        self.unicast = unicast
        self.interleaved = interleaved
        self.clientPort = clientPort
        self.serverPort = serverPort
        self.ssrc = ssrc
        self.modePlay = modePlay
    }

    /// Bounds on what a header may hold.
    public static let maxLength = 1024
    public static let maxAlternatives = 8

    public var description: String {
        var parts = [lower == .tcp ? "RTP/AVP/TCP" : "RTP/AVP", unicast ? "unicast" : "multicast"]
        if let interleaved { parts.append("interleaved=\(interleaved.lowerBound)-\(interleaved.upperBound)") }
        if let clientPort { parts.append("client_port=\(clientPort.lowerBound)-\(clientPort.upperBound)") }
        if let serverPort { parts.append("server_port=\(serverPort.lowerBound)-\(serverPort.upperBound)") }
        if let ssrc {
            let hex = String(ssrc, radix: 16, uppercase: true)
            parts.append("ssrc=" + String(repeating: "0", count: 8 - hex.count) + hex)
        }
        if modePlay { parts.append("mode=play") }
        return parts.joined(separator: ";")
    }

    /// Every alternative of a `Transport` value, in the client's order of
    /// preference; throws on the first one that is malformed or hostile.
    public static func parse(_ value: String) throws(RTSPTransportError) -> [RTSPTransport] {
        guard value.utf8.count <= maxLength else { throw .tooLong(limit: maxLength) }
        let alternatives = value.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        guard !alternatives.isEmpty else { throw .empty }
        guard alternatives.count <= maxAlternatives else { throw .tooManyAlternatives(limit: maxAlternatives) }
        return try alternatives.map { (text: String) throws(RTSPTransportError) -> RTSPTransport in try parseOne(text) }
    }

    static func parseOne(_ text: String) throws(RTSPTransportError) -> RTSPTransport {
        // Blank parameters (`;;`, `; ;`) are nothing, not a parameter without a name.
        var parameters = text.split(separator: ";", omittingEmptySubsequences: true).map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        guard !parameters.isEmpty else { throw .empty }
        let spec = parameters.removeFirst().uppercased()
        var transport: RTSPTransport
        switch spec {
        case "RTP/AVP", "RTP/AVP/UDP": transport = RTSPTransport(lower: .udp)
        case "RTP/AVP/TCP": transport = RTSPTransport(lower: .tcp)
        default: throw .unsupportedProtocol(excerpt(spec))
        }
        var seen = Set<String>()
        for parameter in parameters {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces }
            guard let first = pair.first else { continue }
            let name = first.lowercased()
            guard seen.insert(name).inserted else { throw .duplicate(excerpt(name)) }
            let value = pair.count == 2 ? pair[1] : nil
            switch name {
            case "unicast": transport.unicast = true
            case "multicast": transport.unicast = false
            case "interleaved":
                transport.interleaved = try range(value, name: name, max: 255, even: false)
            case "client_port":
                transport.clientPort = try range(value, name: name, max: 65535, even: true)
            case "server_port":
                transport.serverPort = try range(value, name: name, max: 65535, even: true)
            case "ssrc":
                guard let value, (1...8).contains(value.utf8.count), let ssrc = UInt32(value, radix: 16) else {
                    throw .invalidValue(name: "ssrc", value: excerpt(value ?? ""))
                }
                transport.ssrc = ssrc
            case "mode":
                let mode = (value ?? "").replacingQuotes.uppercased()
                guard mode == "PLAY" else { throw .unsupportedMode(excerpt(mode)) }
                transport.modePlay = true
            default:
                // RFC 2326 §12.39: parameters not understood are ignored
                // (ttl, destination for multicast, append, layers, …).
                continue
            }
        }
        if transport.lower == .tcp, transport.clientPort != nil, transport.interleaved == nil {
            throw .invalidValue(name: "client_port", value: "on RTP/AVP/TCP")
        }
        return transport
    }

    /// `a-b` with b = a + 1, or `a` alone (b = a + 1 implied); within 0...max
    /// (ports: 1...max); `even`: RTP on the even port of the pair (RFC 3550 §11).
    static func range(_ value: String?, name: String, max: Int, even: Bool) throws(RTSPTransportError) -> ClosedRange<Int> {
        guard let value else { throw .invalidValue(name: name, value: "") }
        let ends = value.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        let minimum = name == "interleaved" ? 0 : 1
        guard let first = decimal(ends[0], max: max), first >= minimum else {
            throw .outOfRange(name: name, value: excerpt(value))
        }
        let second: Int
        if ends.count == 2 {
            guard let parsed = decimal(ends[1], max: max) else { throw .outOfRange(name: name, value: excerpt(value)) }
            second = parsed
        } else {
            second = first + 1
        }
        guard second == first + 1, second <= max else { throw .notAPair(name: name, value: excerpt(value)) }
        if even, first % 2 != 0 { throw .notAPair(name: name, value: excerpt(value)) }
        return first...second
    }
}

/// Why a `Transport` value was refused; the server answers 461.
public enum RTSPTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case tooLong(limit: Int)
    case tooManyAlternatives(limit: Int)
    case unsupportedProtocol(String)
    case unsupportedMode(String)
    case duplicate(String)
    case invalidValue(name: String, value: String)
    case outOfRange(name: String, value: String)
    case notAPair(name: String, value: String)

    public var description: String {
        switch self {
        case .empty: "empty Transport header"
        case .tooLong(let limit): "Transport header longer than \(limit) bytes"
        case .tooManyAlternatives(let limit): "more than \(limit) alternatives in the Transport header"
        case .unsupportedProtocol(let spec): "unsupported transport \"\(spec)\" (RTP/AVP or RTP/AVP/TCP)"
        case .unsupportedMode(let mode): "unsupported transport mode \"\(mode)\" (only play)"
        case .duplicate(let name): "Transport parameter \(name) given twice"
        case .invalidValue(let name, let value): "invalid Transport \(name) \"\(value)\""
        case .outOfRange(let name, let value): "Transport \(name) \"\(value)\" out of range"
        case .notAPair(let name, let value): "Transport \(name) \"\(value)\" is not an even/odd pair a-(a+1)"
        }
    }
}

extension StringProtocol {
    var replacingQuotes: String { String(filter { $0 != "\"" }) }
}
