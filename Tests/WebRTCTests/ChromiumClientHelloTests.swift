import NIOCore
import Testing
@testable import WebRTC

/// The server against a real browser's ClientHello, replayed: reassembled
/// from its two datagrams in either order, and answered with DTLS 1.2 and
/// SRTP_AES128_CM_SHA1_80.
@Suite struct ChromiumClientHelloTests {
    static func server() throws -> DTLSTransport {
        try DTLSTransport(context: DTLSContext(certificate: DTLSCertificate()))
    }

    /// The ServerHello's use_srtp extension choosing profile 0x0001 with no
    /// MKI: type 14, length 5, profiles length 2, 0x0001, MKI length 0.
    static let useSRTPAES128 = [UInt8]([0x00, 0x0E, 0x00, 0x05, 0x00, 0x02, 0x00, 0x01, 0x00])

    static func expectAnswered(_ answer: [ByteBuffer], _ server: DTLSTransport) {
        #expect(!answer.isEmpty, "the server's flight")
        let first = answer.first.map { Array($0.readableBytesView) } ?? []
        #expect(first.starts(with: [22, 0xFE, 0xFD]), "a DTLS 1.2 handshake record")
        #expect(first.count >= 13 && first[13] == 2, "ServerHello")
        let bytes = answer.flatMap { Array($0.readableBytesView) }
        #expect(bytes.indices.contains { bytes[$0...].starts(with: useSRTPAES128) }, "use_srtp AES128_CM_SHA1_80")
        #expect(server.state == .handshaking)
        #expect(server.timeout != nil, "the server now waits for the client's flight")
    }

    @Test func aFragmentedClientHelloIsReassembledAndAnswered() throws {
        let server = try Self.server()
        server.receive(ByteBuffer(bytes: ChromiumClientHello.first))
        #expect(server.outputDatagrams().isEmpty, "half a ClientHello")
        #expect(server.timeout == nil)
        server.receive(ByteBuffer(bytes: ChromiumClientHello.second))
        Self.expectAnswered(server.outputDatagrams(), server)
    }

    @Test func fragmentsInReverseOrder() throws {
        let server = try Self.server()
        server.receive(ByteBuffer(bytes: ChromiumClientHello.second))
        #expect(server.outputDatagrams().isEmpty)
        server.receive(ByteBuffer(bytes: ChromiumClientHello.first))
        Self.expectAnswered(server.outputDatagrams(), server)
    }

    @Test func aLostFragmentWaitsForTheBrowsersRetransmission() throws {
        let server = try Self.server()
        server.receive(ByteBuffer(bytes: ChromiumClientHello.first)) // the second is lost
        #expect(server.outputDatagrams().isEmpty)
        #expect(server.timeout == nil, "the browser's timer, not ours, resends a ClientHello")
        // The browser's retransmission: both datagrams again.
        server.receive(ByteBuffer(bytes: ChromiumClientHello.first))
        server.receive(ByteBuffer(bytes: ChromiumClientHello.second))
        Self.expectAnswered(server.outputDatagrams(), server)
    }
}
