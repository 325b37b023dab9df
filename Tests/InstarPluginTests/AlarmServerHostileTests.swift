import Camflow
import CamflowTesting
import Foundation
@testable import InstarPlugin
import InstarProtocol
import NIOCore
import Synchronization
import Testing

/// The alarm server against peers that abuse HTTP: pipelining, huge heads,
/// bytes that are no HTTP, and many IPv6 addresses of one host.
@Suite struct AlarmServerHostileTests {
    /// Sends `bytes` on a new connection and reads until the server closes it; the answer and how long it took.
    /// The socket calls block: they run on a thread of their own, never on the tests' shared pool.
    private func exchange(_ port: Int, _ bytes: [UInt8]) async throws -> (answer: String, elapsed: Duration) {
        try await BlockingIOThread.run(name: "test-alarm-peer") { try blockingExchange(port, bytes) }
    }

    private func blockingExchange(_ port: Int, _ bytes: [UInt8]) throws -> (answer: String, elapsed: Duration) {
        let fd = try #require(Loopback.connect(port: port))
        defer { close(fd) }
        let started = ContinuousClock.now
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }  // closed by the server mid-send: what matters is what it answered
            offset += sent
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[..<count]
        }
        return (String(decoding: received, as: UTF8.self), ContinuousClock.now - started)
    }

    /// The alarms a server delivered.
    private final class Delivered: Sendable {
        let alarms = Mutex<[CameraAlarm]>([])
        var sources: [String] { alarms.withLock { $0.map(\.source) } }
    }

    private func start(_ delivered: Delivered) async throws -> AlarmServer {
        try await AlarmServer.start(host: "127.0.0.1", port: 0, credentials: nil, deadline: .seconds(5)) { alarm, _ in
            delivered.alarms.withLock { $0.append(alarm) }
        }
    }

    @Test func fiftyPipelinedAlarmsOnOneConnection_deliverOnlyTheFirst() async throws {
        let alarms = Delivered()
        let server = try await start(alarms)
        let requests = (0..<50).map { "GET /?active=\($0 % 2 == 0 ? 1 : 6) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()
        let (answer, elapsed) = try await exchange(server.address.port, Array(requests.utf8))
        // What the server still had buffered is handed on as the connection closes: wait for that.
        try await waitUntil("the server closed the connection", timeout: .seconds(10)) { server.openConnections == 0 }
        #expect(answer.components(separatedBy: "HTTP/1.1 ").count - 1 == 1, "one response: \(answer)")
        #expect(answer.hasPrefix("HTTP/1.1 200"))
        #expect(elapsed < .seconds(3), "closed after the first answer, not at the deadline: \(elapsed)")
        #expect(alarms.sources == ["area1"])
        await server.stop()
    }

    @Test func aHugeHeadOrBody_isCutLongBeforeTheDeadline_andTheServerServesOn() async throws {
        let alarms = Delivered()
        let server = try await start(alarms)
        let port = server.address.port
        let hugeHead = "GET /?active=1 HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: 1 << 20)
        let head = try await exchange(port, Array(hugeHead.utf8))
        #expect(!head.answer.contains("200"), "\(head.answer)")
        #expect(head.elapsed < .seconds(3), "\(head.elapsed)")
        let endlessBody = "POST /?active=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + String(repeating: "b", count: 1 << 20)
        let body = try await exchange(port, Array(endlessBody.utf8))
        #expect(body.answer.isEmpty, "\(body.answer)")
        #expect(body.elapsed < .seconds(3), "\(body.elapsed)")
        var junk = [UInt8](repeating: 0, count: 2048)
        for index in junk.indices { junk[index] = UInt8(truncatingIfNeeded: index &* 37 &+ 11) }
        let binary = try await exchange(port, junk)
        #expect(binary.answer.isEmpty || binary.answer.hasPrefix("HTTP/1.1 400"), "\(binary.answer)")
        #expect(binary.elapsed < .seconds(3), "\(binary.elapsed)")
        #expect(alarms.sources.isEmpty)
        let camera = try await exchange(port, Array("GET /?active=2 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(camera.answer.hasPrefix("HTTP/1.1 200"))
        #expect(alarms.sources == ["area2"])
        await server.stop()
    }

    @Test func oneIPv6SlashSixtyFourIsOneAddress_andMappedIPv4IsItsIPv4() throws {
        func group(_ text: String) throws -> String { AlarmServer.peerGroup(try SocketAddress(ipAddress: text, port: 80)) }
        #expect(try group("2001:db8:1:2::1") == group("2001:db8:1:2:ffff:eeee:dddd:cccc"))
        #expect(try group("2001:db8:1:2::1") != group("2001:db8:1:3::1"))
        #expect(try group("::ffff:10.0.0.7") == group("10.0.0.7"))
        #expect(try group("10.0.0.7") != group("10.0.0.8"))
    }
}

@Suite struct AlarmServerGuessingTests {
    @Test func tenWrongPasswords_closeTheAddressForTheWindow_thenTheRightOneWorks() async throws {
        let right = BasicCredentials(username: "cam", password: "s3cret")
        let server = try await AlarmServer.start(host: "127.0.0.1", port: 0, credentials: right, authFailureWindow: .seconds(2)) { _, _ in }
        // The socket calls block: they run on a thread of their own, never on the tests' shared pool.
        func ask(_ credentials: BasicCredentials) async throws -> String {
            try await BlockingIOThread.run(name: "test-alarm-peer") { try blockingAsk(credentials) }
        }
        func blockingAsk(_ credentials: BasicCredentials) throws -> String {
            let fd = try #require(Loopback.connect(port: server.address.port))
            defer { close(fd) }
            _ = "GET /?active=1 HTTP/1.1\r\nHost: x\r\nAuthorization: \(credentials.authorization)\r\n\r\n".withCString { send(fd, $0, strlen($0), 0) }
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &chunk, chunk.count, 0)
                if count <= 0 { break }
                received += chunk[..<count]
            }
            return String(decoding: received, as: UTF8.self)
        }
        for guess in 0..<AlarmServer.maxAuthFailures {
            #expect(try await ask(BasicCredentials(username: "cam", password: "guess\(guess)")).hasPrefix("HTTP/1.1 401"))
        }
        // The eleventh try is closed unanswered, even with the right password.
        #expect(try await ask(right).isEmpty)
        try await waitUntil("the window ends", timeout: .seconds(10)) { (try? await ask(right))?.hasPrefix("HTTP/1.1 200") == true }
        await server.stop()
    }
}
