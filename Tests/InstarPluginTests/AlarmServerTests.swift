import Camflow
import Foundation
@testable import InstarPlugin
import InstarProtocol
import NIOCore
import Synchronization
import Testing

/// The alarm server against peers that do not behave.
@Suite struct AlarmServerTests {
    private func connect(_ port: Int) throws -> Int32 {
        try #require(Loopback.connect(port: port))
    }

    /// Reads until the peer closes; what was read.
    private func readToEnd(_ fd: Int32) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    @Test func aTricklingPeerIsCutAtTheDeadline_andOneAddressCannotTakeEveryConnection() async throws {
        let alarms = Mutex<[CameraAlarm]>([])
        let server = try await AlarmServer.start(host: "127.0.0.1", port: 0, credentials: nil, deadline: .milliseconds(500)) { alarm, _ in
            alarms.withLock { $0.append(alarm) }
        }
        let port = server.address.port
        // The socket calls block: they run on a thread of their own, never on the tests' shared pool.
        try await BlockingIOThread.run(name: "test-alarm-peer") {
            // A peer sending a byte every 100 ms (never idle) is closed at the deadline, its request unanswered.
            let started = ContinuousClock.now
            let trickler = try connect(port)
            _ = "GET /?active=1 HTTP/1.1\r\nX-Slow: ".withCString { send(trickler, $0, strlen($0), 0) }
            let sender = Thread {
                for _ in 0..<40 {
                    guard send(trickler, "a", 1, Int32(MSG_NOSIGNAL)) == 1 else { return }
                    usleep(100_000)
                }
            }
            sender.start()
            #expect(readToEnd(trickler).isEmpty)
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(3), "closed by the deadline: \(elapsed)")
            shutdown(trickler, Int32(SHUT_RDWR))
            // Eight idle connections from one address are all it may hold; the ninth is closed at once.
            let idle = try (0..<AlarmServer.maxConnectionsPerAddress).map { _ in try connect(port) }
            let ninth = try connect(port)
            #expect(readToEnd(ninth).isEmpty)
            close(ninth)
            // Once they are gone (the deadline closes them), a real alarm gets through.
            for fd in idle { _ = readToEnd(fd); close(fd) }
            var answer = ""
            for _ in 0..<100 where !answer.hasPrefix("HTTP/1.1 200") {
                let camera = try connect(port)
                _ = "GET /?active=6 HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(camera, $0, strlen($0), 0) }
                answer = readToEnd(camera)
                close(camera)
            }
            #expect(answer.hasPrefix("HTTP/1.1 200"))
        }
        #expect(alarms.withLock { $0.map(\.source) } == ["audio"])
        await server.stop()
    }

    @Test func credentialsAreRequiredWhenSet() async throws {
        let server = try await AlarmServer.start(host: "127.0.0.1", port: 0, credentials: BasicCredentials(username: "cam", password: "s3cret")) { _, _ in }
        try await BlockingIOThread.run(name: "test-alarm-peer") {
            for (authorization, status) in [(nil, "401"), ("Basic Y2FtOndyb25n", "401"),
                                            (BasicCredentials(username: "cam", password: "s3cret").authorization, "200")] {
                let fd = try connect(server.address.port)
                let header = authorization.map { "Authorization: \($0)\r\n" } ?? ""
                _ = "GET /?active=1 HTTP/1.1\r\nHost: x\r\n\(header)\r\n".withCString { send(fd, $0, strlen($0), 0) }
                #expect(readToEnd(fd).hasPrefix("HTTP/1.1 \(status)"), "\(authorization ?? "none")")
                close(fd)
            }
        }
        await server.stop()
    }
}
