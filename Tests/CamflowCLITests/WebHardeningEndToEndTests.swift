import Camflow
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The web sink against hostile browsers and clients: pages of other sites,
/// near-miss passwords, and sockets that connect and never speak.
@Suite struct WebHardeningEndToEndTests {
    let web = WebEndToEndTests()

    @Test func webSockets_fromOtherSitesPages_areRefused() async throws {
        let (sim, run, port) = try await web.startWeb(webOptions: ", allowed-origins: [\"https://nvr.example\"]")
        defer { sim.process.terminate(); run.process.terminate() }
        let evil = try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: http://evil.example"])
        #expect(evil.status == 403, "\(evil.head)")
        #expect(try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: null"]).status == 403, "a sandboxed page")
        #expect(try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: http://127.0.0.1:1\(port)"]).status == 403)
        #expect(try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: ws://127.0.0.1"]).status == 101,
                "WebSocket libraries name the socket's URL")
        #expect(try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: http://127.0.0.1:\(port)"]).status == 101)
        #expect(try await rawHTTP(port: port, "/ws", upgrade: true, headers: ["Origin: https://nvr.example"]).status == 101)
        #expect(try await rawHTTP(port: port, "/ws", upgrade: true).status == 101, "clients without Origin are not browsers")
        let refused = try await web.prometheusSample(port: port, "camflow_web_connections_refused_total{node=web,reason=origin}")
        #expect(refused >= 1)
    }

    @Test func thePasswordWithTrailingBytes_isNotThePassword() async throws {
        let (sim, run, port) = try await web.startWeb(webOptions: ", username: viewer, password: s3cret")
        defer { sim.process.terminate(); run.process.terminate() }
        func basic(_ text: String) -> String { "Basic " + Data(text.utf8).base64EncodedString() }
        #expect(try await rawHTTP(port: port, "/healthz", authorization: basic("viewer:s3cret")).status == 200)
        for near in ["viewer:s3cret" + String(repeating: "\0", count: 256), "viewer:s3cret\0", "viewer:s3cre", "viewer\0:s3cret"] {
            #expect(try await rawHTTP(port: port, "/healthz", authorization: basic(near)).status == 401, "\(near.debugDescription)")
            #expect(try await rawHTTP(port: port, "/ws", authorization: basic(near), upgrade: true).status == 401)
        }
    }

    @Test func silentConnections_areClosed_andLimited() async throws {
        let (sim, run, port) = try await web.startWeb(
            webOptions: ", header-timeout: 1s, max-connections: 40, max-connections-per-client: 30")
        defer { sim.process.terminate(); run.process.terminate() }
        // The sockets block until the server closes them: off the cooperative pool.
        let closedAt = try await BlockingIOThread.run(name: "test silent connections") {
            // 60 connections that start a request and never finish its headers.
            var sockets: [Int32] = []
            defer { for fd in sockets { close(fd) } }
            for _ in 0..<60 {
                let fd = try connectTCP(port: port)
                _ = "GET /healthz HTTP/1.1\r\nHost: x\r\n".withCString { send(fd, $0, strlen($0), 0) }
                sockets.append(fd)
            }
            // Each ends: those past the per-client limit at once, the rest at the header timeout.
            let started = ContinuousClock.now
            var closedAt: [Duration] = []
            for fd in sockets {
                var byte: UInt8 = 0
                let count = recv(fd, &byte, 1, 0)
                // Closed: an orderly end, or a reset where the server had unread bytes.
                let failure = errno
                #expect(count == 0 || (count < 0 && failure == ECONNRESET),
                        "the server closed the connection (recv gave \(count), errno \(failure))")
                closedAt.append(ContinuousClock.now - started)
            }
            return closedAt
        }
        #expect(closedAt.max() ?? .zero < .seconds(8), "all closed within the header timeout, with slack: \(closedAt.max() ?? .zero)")
        // The server still serves, and said why it refused.
        #expect(try await rawHTTP(port: port, "/healthz").status == 200)
        #expect(try await web.prometheusSample(port: port, "camflow_web_connections_refused_total{node=web,reason=header-timeout}") >= 30)
        #expect(try await web.prometheusSample(port: port, "camflow_web_connections_refused_total{node=web,reason=max-connections-per-client}") >= 30)
    }

    /// Guessing was 5,400 passwords a second on one connection, each logged:
    /// now ten a minute per address, then 429 (the right password too) until
    /// the minute ends, and two log lines instead of one a guess.
    @Test func wrongPasswords_lockTheAddressOut_forTheMinute() async throws {
        let (sim, run, port) = try await web.startWeb(webOptions: ", username: viewer, password: s3cret")
        defer { sim.process.terminate(); run.process.terminate() }
        func basic(_ text: String) -> String { "Basic " + Data(text.utf8).base64EncodedString() }
        for guess in 0..<10 {
            let path = guess % 2 == 0 ? "/healthz" : "/ws"
            #expect(try await rawHTTP(port: port, path, authorization: basic("viewer:guess\(guess)"), upgrade: path == "/ws").status == 401)
        }
        let locked = try await rawHTTP(port: port, "/healthz", authorization: basic("viewer:s3cret"))
        #expect(locked.status == 429, "\(locked.head)")
        #expect(locked.head.lowercased().contains("retry-after: 60"))
        #expect(try await rawHTTP(port: port, "/ws", authorization: basic("viewer:s3cret"), upgrade: true).status == 429)
        try await run.waitForLine(inStderr: true) { $0.contains("sent wrong credentials 10 times within a minute") }
        #expect(run.stderr.components(separatedBy: "refused wrong credentials").count - 1 == 1, "\(run.stderr)")
    }

    /// A client that never authenticates held its place for ever by sending a
    /// request within each idle timeout: its 401 now ends the connection.
    @Test func aRequestWithoutCredentials_endsItsConnection() async throws {
        let (sim, run, port) = try await web.startWeb(webOptions: ", username: viewer, password: s3cret")
        defer { sim.process.terminate(); run.process.terminate() }
        let received = try await BlockingIOThread.run(name: "test unauthenticated request") {
            let fd = try connectTCP(port: port)
            defer { close(fd) }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            _ = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".withCString { send(fd, $0, strlen($0), 0) }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 {
                    #expect(count == 0, "the server closed the connection (recv gave \(count), errno \(errno))")
                    break
                }
                received += buffer[0..<count]
            }
            return received
        }
        #expect(String(decoding: received, as: UTF8.self).hasPrefix("HTTP/1.1 401"))
    }
}
