import Camflow
import CamflowTesting
import Foundation
import Logging
import MQTTClient
@testable import MQTTPlugin
import NIOCore
import Synchronization
import Testing

/// Broker URLs written to mislead: the credentials end at the last '@', and
/// what could be read two ways is refused.
@Suite struct BrokerURLHostileTests {
    @Test func aHashOrAtInThePassword_doesNotMoveTheHost() throws {
        let url = try BrokerURL(parsing: "mqtt://u:P@ss#x@broker.example:1884")
        #expect(url.host == "broker.example" && url.port == 1884)
        #expect(url.username == "u" && url.password == "P@ss#x")
        #expect(!url.description.contains("ss#x"))
        let slashes = try BrokerURL(parsing: "mqtts://cam:ab/c?d=@10.0.0.2")
        #expect(slashes.host == "10.0.0.2" && slashes.password == "ab/c?d=" && slashes.port == 8883)
        let ipv6 = try BrokerURL(parsing: "mqtt://u:p@[::1]:2883/")
        #expect(ipv6.host == "::1" && ipv6.port == 2883 && ipv6.description == "mqtt://u:***@[::1]:2883")
    }

    @Test func ambiguousURLsAreRefusedSayingWhy() {
        let cases = [
            ("mqtt://host/path@other", "ambiguous"),        // a host with a path, or a user 'host/path'?
            ("mqtt://a#b@host", "ambiguous"),
            ("mqtt://u:hunter2@host#frag", "fragment"),
            ("mqtt://u:hunter2@host:1883:1", "more than one ':'"),
            ("mqtt://u:hunter2@host:12ab", "not a number"),
            ("mqtt://u:hunter2@ho st", "space or control"),
            ("mqtt://u:hunter2%zz@host", "%25"),
            ("mqtt://u:hunter2@[::1", "never closes"),
            ("mqtt://u:hunter2@h%41st", "not a host name"),
            ("mqtt://u:hunter2@", "no host"),
        ]
        for (text, expected) in cases {
            do {
                let url = try BrokerURL(parsing: text)
                Issue.record("'\(text)' was accepted as \(url)")
            } catch {
                #expect(error.description.contains(expected), "\(text): \(error)")
                #expect(!error.description.contains("hunter2"), "\(text): \(error)")
            }
        }
    }
}

/// A TCP peer on a loopback port that plays the broker: reads each CONNECT
/// and answers it with `reply`, then keeps the connection open.
final class FakeBroker: @unchecked Sendable {
    // @unchecked: the listening socket is set once; what was seen is behind the lock.
    let port: Int
    private let listener: Int32
    private final class Seen: Sendable {
        let connects = Mutex<[[UInt8]]>([])
    }
    private let seen = Seen()

    init(reply: [UInt8]) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            close(listener)
            throw MQTTError("cannot listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        let seen = self.seen
        // accept and recv block: on a thread of its own until deinit shuts the listener.
        Task {
            await BlockingIOThread.run(name: "test fake broker") {
                while true {
                    let connection = accept(listener, nil, nil)
                    if connection < 0 { return }
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let count = recv(connection, &buffer, buffer.count, 0)
                    seen.connects.withLock { $0.append(Array(buffer[..<max(0, count)])) }
                    _ = reply.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    // Left open: what the client does next is its own doing.
                }
            }
        }
    }

    deinit { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }

    /// The first bytes of each connection (the CONNECT packet).
    var connects: [[UInt8]] { seen.connects.withLock { $0 } }
}

/// A logger whose lines are kept, to see what the client said.
final class RecordedLog: @unchecked Sendable {
    // @unchecked: lines are behind the lock.
    private let lines = Mutex<[String]>([])
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
    var logger: Logger {
        Logger(label: "test") { _ in Handler(record: self) }
    }

    private struct Handler: LogHandler {
        let record: RecordedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { record.lines.withLock { $0.append("\(event.level): \(event.message)") } }
    }
}

@Suite(.serialized) struct MQTTHostileBrokerTests {
    private func client(_ port: Int, _ log: RecordedLog, _ configure: (inout MQTTClient.Configuration) -> Void = { _ in }) throws -> MQTTClient {
        var configuration = MQTTClient.Configuration(broker: BrokerURL(host: "127.0.0.1", port: port), clientID: "hostile-test")
        configuration.reconnectDelay = (.seconds(1), .seconds(1))
        configure(&configuration)
        let client = try MQTTClient(configuration, logger: log.logger)
        try client.start()
        return client
    }

    @Test func oneMalformedPacketFromTheBroker_doesNotEndTheClient_itConnectsAgain() async throws {
        // A PINGREQ to a client is a protocol error: libmosquitto's own loop would end for good on it.
        let broker = try FakeBroker(reply: [0xC0, 0x00])
        let log = RecordedLog()
        let client = try client(broker.port, log)
        try await waitUntil("a second connection after the protocol error", timeout: .seconds(10)) { broker.connects.count >= 2 }
        client.stop()
        #expect(log.text.contains("retrying"), "\(log.text)")
    }

    @Test func withMQTT5_theConnectAnnouncesTheLargestPacket_and311IsSaidNotGuessed() async throws {
        // A 3.1.1-only broker refuses version 5 with a 3.1.1 CONNACK (return code 1).
        let broker = try FakeBroker(reply: [0x20, 0x02, 0x00, 0x01])
        let log = RecordedLog()
        let client = try client(broker.port, log) { $0.maxPayload = 4096 }
        try await waitUntil("the CONNECT", timeout: .seconds(10)) { !broker.connects.isEmpty }
        try await waitUntil("the refusal is explained", timeout: .seconds(10)) { log.text.contains("does not speak MQTT 5") }
        client.stop()
        let connect = try #require(broker.connects.first)
        try #require(connect.count > 9, "\(connect)")
        // CONNECT, remaining length (one byte here), "MQTT", protocol level 5.
        #expect(connect.first == 0x10 && Array(connect[2..<9]) == [0, 4, 0x4D, 0x51, 0x54, 0x54, 5], "\(connect)")
        // Maximum Packet Size (0x27) with the payload limit and the room for topic and properties.
        let size = UInt32(4096 + 4096)
        let property: [UInt8] = [0x27, UInt8(size >> 24), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)]
        #expect(connect.indices.contains { Array(connect[$0...].prefix(5)) == property }, "\(connect)")
        #expect(log.text.contains("protocol: 3.1.1"))
        #expect(log.text.components(separatedBy: "does not speak MQTT 5").count == 2, "said once, not per retry:\n\(log.text)")
    }

    @Test func topicsWithWildcardsInTheWrongPlaceOrNUL_areRefusedWhereTheyAreRead() {
        for filter in ["a/#/b", "a#", "+x/y", "cams\u{0}/#", "", "a/\u{1B}[31m"] {
            #expect(MQTTTopicRules.filterProblem(filter) != nil, "\(filter.debugDescription)")
        }
        for filter in ["#", "a/+/b", "+", "a/#", "/", "instar/+/status/alarm/#"] {
            #expect(MQTTTopicRules.filterProblem(filter) == nil, "\(filter)")
        }
        #expect(MQTTTopicRules.nameProblem("camflow/#") != nil && MQTTTopicRules.nameProblem("home\u{0}x") != nil)
        #expect(MQTTTopicRules.nameProblem("home/assistant") == nil)
    }

    @Test func aRetainedFloodOfLargePayloads_isHeldToABoundedNumberOfMessages() throws {
        var configuration = MQTTClient.Configuration(broker: BrokerURL(host: "127.0.0.1"), clientID: "bounded")
        configuration.maxPayload = 16 << 20
        let client = try MQTTClient(configuration, logger: Logger(label: "bounded"))
        #expect(client.bufferedMessages * configuration.maxPayload <= 64 << 20)
        configuration.maxPayload = 4096
        #expect(try MQTTClient(configuration, logger: Logger(label: "bounded")).bufferedMessages == 1024)
    }

    @Test func aTopicWithNUL_isNotPublishedElsewhere() throws {
        let client = try MQTTClient(.init(broker: BrokerURL(host: "127.0.0.1"), clientID: "nul"), logger: Logger(label: "nul"))
        #expect(!client.publish(.init(topic: "camflow/a\u{0}/../b", text: "x", qos: 1)))
        #expect(client.droppedSent == 1)
    }
}

@Suite struct MQTTHostilePayloadTests {
    @Test func aPayloadNestedTensOfThousandsDeep_becomesAnEventWithoutItsMembers() {
        let payload = ByteBuffer(string: #"{"a":"# + String(repeating: "[", count: 60_000) + String(repeating: "]", count: 60_000) + "}")
        let fields = MQTTSubscribe.fields(of: .init(topic: "t", payload: payload))
        #expect(fields.map(\.key) == ["topic", "retained"], "too long for the payload field, too deep for members")
    }
}
