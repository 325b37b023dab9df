import CamflowTesting
import Camflow
import Foundation
import ISOBMFF
import Logging
import NIOCore
import Testing
import WSClient
#if canImport(Glibc)
import Glibc
#endif

// Clients the web end-to-end tests drive: raw HTTP, a WebSocket viewer that
// records what it gets, and one that reads slowly.

/// Reads /api/stats.
func apiStats(port: Int) async throws -> [String: Any] {
    let response = try await rawHTTP(port: port, "/api/stats")
    return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
}

/// GOPs viewer `id` lost so far, from /api/stats.
func droppedGOPs(port: Int, viewer id: Int) async throws -> Int {
    let viewers = try await apiStats(port: port)["viewers"] as? [[String: Any]] ?? []
    return viewers.first { $0["id"] as? Int == id }?["droppedGOPs"] as? Int ?? 0
}

/// One HTTP/1.1 request over a plain socket, read to the end: status, head
/// and body exactly as sent. `upgrade` asks for a WebSocket and reads the head only.
/// Its blocking socket calls run on a thread of their own, never on the
/// cooperative pool that the tests running beside it share.
func rawHTTP(port: Int, _ path: String, authorization: String? = nil, upgrade: Bool = false,
             headers: [String] = []) async throws -> (status: Int, head: String, body: String)
{
    try await BlockingIOThread.run(name: "test http") {
        try blockingHTTP(port: port, path, authorization: authorization, upgrade: upgrade, headers: headers)
    }
}

private func blockingHTTP(port: Int, _ path: String, authorization: String?, upgrade: Bool,
                          headers: [String]) throws -> (status: Int, head: String, body: String)
{
    let fd = try connectTCP(port: port)
    defer { close(fd) }
    var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
    if upgrade {
        request += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    } else {
        request += "Connection: close\r\n"
    }
    if let authorization { request += "Authorization: \(authorization)\r\n" }
    for header in headers { request += header + "\r\n" }
    request += "\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &chunk, chunk.count, 0)
        if count <= 0 { break }
        received += chunk[..<count]
        if upgrade, received.count >= 4, received.suffix(4) == [13, 10, 13, 10] { break }
    }
    let text = String(decoding: received, as: UTF8.self)
    let parts = text.components(separatedBy: "\r\n\r\n")
    let head = parts.first ?? ""
    let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
}

/// Text and binary messages one client received, and when it sent `stop`.
final class MessageLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _texts: [String] = []
    private var binaries = 0
    private var stopAt: Int?
    private var lastBinary: ContinuousClock.Instant?

    func append(_ message: WebSocketMessage) {
        lock.withLock {
            switch message {
            case .text(let text): _texts.append(text)
            case .binary:
                binaries += 1
                lastBinary = .now
            }
        }
    }

    /// When the last binary message came.
    var lastBinaryAt: ContinuousClock.Instant? { lock.withLock { lastBinary } }

    func markStop() { lock.withLock { stopAt = binaries } }
    var texts: [String] { lock.withLock { _texts } }
    var binaryCount: Int { lock.withLock { binaries } }
    var binaryAfterStop: Int { lock.withLock { stopAt.map { binaries - $0 } ?? 0 } }
}

/// One viewer: connects to /ws, sends `livestream`, keeps every binary
/// message until the server goes away.
final class ViewerRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [ByteBuffer] = []

    var messageCount: Int { lock.withLock { messages.count } }

    func watch(port: Int) async throws {
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws", configuration: .init(maxFrameSize: 16 << 20),
                                          logger: Logger(label: "viewer")) { inbound, outbound, _ in
            try await outbound.write(.text("livestream"))
            var count = 0
            for try await message in inbound.messages(maxSize: 16 << 20) {
                if case .binary(let buffer) = message { self.lock.withLock { self.messages.append(buffer) } }
                count += 1
                if count % 10 == 0 { try await outbound.write(.text("keep-alive")) }
            }
        }
    }

    struct Received {
        var initSegments = 0
        var fragments: [(sequence: UInt32, startsWithKeyframe: Bool)] = []
    }

    func parse() throws -> Received { try Self.parse(lock.withLock { messages }) }

    /// Parses binary messages with camflow's streaming parser.
    static func parse(_ messages: [ByteBuffer]) throws -> Received {
        var parser = StreamingParser()
        var result = Received()
        for message in messages {
            parser.append(message)
            while let item = try parser.next() {
                switch item {
                case .initSegment: result.initSegments += 1
                case .fragment(let fragment):
                    let video = fragment.samples.first { $0.track == 1 }
                    result.fragments.append((fragment.sequenceNumber, video?.isSync == true))
                default: break
                }
            }
        }
        return result
    }
}

/// A viewer on a plain blocking socket with a small receive buffer: it
/// asks for the stream, then reads nothing until ``readMessages(atLeast:)``.
/// Its socket calls block, so they run on a thread of their own.
final class SlowViewer: @unchecked Sendable {
    let fd: Int32

    /// Connects and asks for the stream.
    static func connect(port: Int) async throws -> SlowViewer {
        try await BlockingIOThread.run(name: "test slow viewer") { try SlowViewer(port: port) }
    }

    private init(port: Int) throws {
        fd = try connectTCP(port: port, receiveBuffer: 32 * 1024)
        let request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while head.suffix(4) != [13, 10, 13, 10], recv(fd, &byte, 1, 0) == 1 { head.append(byte) }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
            throw POSIXError(.EPROTO)
        }
        // A masked text frame, as clients send.
        let text = Array("livestream".utf8)
        let mask: [UInt8] = [1, 2, 3, 4]
        let frame = [0x81, 0x80 | UInt8(text.count)] + mask + text.enumerated().map { $1 ^ mask[$0 % 4] }
        _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { close(fd) }

    /// Reads frames until `count` binary messages arrived (10 s at most).
    func readMessages(atLeast count: Int) async throws -> [ByteBuffer] {
        await BlockingIOThread.run(name: "test slow viewer read") {
            var bytes: [UInt8] = []
            var messages: [ByteBuffer] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let deadline = ContinuousClock.now + .seconds(10)
            while messages.count < count, ContinuousClock.now < deadline {
                let n = recv(self.fd, &chunk, chunk.count, 0)
                if n <= 0 { break }
                bytes += chunk[..<n]
                while let (opcode, payload, used) = Self.frame(bytes) {
                    if opcode == 2 { messages.append(ByteBuffer(bytes: payload)) }
                    bytes.removeFirst(used)
                }
            }
            return messages
        }
    }

    /// One unmasked server frame at the start of `bytes`: opcode, payload, bytes used.
    static func frame(_ bytes: [UInt8]) -> (UInt8, [UInt8], Int)? {
        guard bytes.count >= 2 else { return nil }
        var length = Int(bytes[1] & 0x7f)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard bytes.count >= offset + length else { return nil }
        return (bytes[0] & 0x0f, Array(bytes[offset..<offset + length]), offset + length)
    }
}

/// A connected TCP socket to 127.0.0.1:`port`, with a receive buffer size if given.
func connectTCP(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
    let fd = Loopback.connect(port: port) { fd in
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }
    guard let fd else { throw POSIXError(.init(rawValue: errno) ?? .ECONNREFUSED) }
    return fd
}
