import NIOCore
import Testing
@testable import WebRTC

/// Two shim connections in one process: camflow's server and a test client
/// with a certificate of its own, datagrams carried by hand.
struct DTLSPair {
    let serverCertificate: DTLSCertificate
    let clientCertificate: DTLSCertificate
    let server: DTLSTransport
    let client: DTLSTransport

    init(mtu: UInt16 = 1200, serverTimeout: Duration? = nil) throws {
        serverCertificate = try DTLSCertificate(commonName: "camflow test server")
        clientCertificate = try DTLSCertificate(commonName: "camflow test client")
        server = try DTLSTransport(context: DTLSContext(certificate: serverCertificate), mtu: mtu,
                                   initialTimeout: serverTimeout)
        client = try DTLSTransport(clientOf: DTLSContext(certificate: clientCertificate), mtu: mtu)
    }

    /// Carries datagrams both ways until neither side sends; `keep` decides
    /// per server datagram (in sending order) whether it arrives. Bounded.
    /// Returns the server's datagrams seen.
    @discardableResult
    func exchange(keep: (Int, ByteBuffer) -> Bool = { _, _ in true }) -> [ByteBuffer] {
        var fromServer: [ByteBuffer] = []
        for _ in 0..<16 {
            let toServer = client.outputDatagrams()
            for datagram in toServer { server.receive(datagram) }
            let toClient = server.outputDatagrams()
            for datagram in toClient {
                if keep(fromServer.count, datagram) { client.receive(datagram) }
                fromServer.append(datagram)
            }
            if toServer.isEmpty && toClient.isEmpty { break }
        }
        return fromServer
    }
}

/// The shim's live objects are process-wide: the suite runs its tests one at
/// a time so its leak check reads only its own.
@Suite(.serialized) struct DTLSTransportTests {
    @Test func handshakeAgreesOnKeysAndSeesTheClientsCertificate() throws {
        let pair = try DTLSPair()
        #expect(pair.server.timeout == nil, "no timer before the ClientHello")
        pair.exchange()
        #expect(pair.server.state == .established)
        #expect(pair.client.state == .established)

        let material = try pair.server.keyingMaterial()
        #expect(material.count == 60)
        #expect(try pair.client.keyingMaterial() == material)
        #expect(Set(material).count > 8, "exported bytes, not zeros")

        // RFC 5764 §4.2: client key, server key, client salt, server salt.
        let keys = try pair.server.srtpKeys()
        #expect(keys.outbound == Array(material[16..<32] + material[46..<60]))
        #expect(keys.inbound == Array(material[0..<16] + material[32..<46]))
        let clientKeys = try pair.client.srtpKeys()
        #expect(clientKeys.outbound == keys.inbound)
        #expect(clientKeys.inbound == keys.outbound)

        // What the SDP fingerprint check compares.
        #expect(pair.server.peerCertificateDER == pair.clientCertificate.certificateDER)
        let seen = try #require(pair.server.peerFingerprint)
        #expect(seen.matches(pair.clientCertificate.fingerprint))
        #expect(!seen.matches(pair.serverCertificate.fingerprint))
        #expect(pair.client.peerFingerprint == pair.serverCertificate.fingerprint)
        #expect(pair.server.timeout == nil, "the timer stops once established")
    }

    @Test func keysAreRefusedBeforeTheHandshake() throws {
        let pair = try DTLSPair()
        #expect(throws: DTLSError.noKeyingMaterial) { try pair.server.srtpKeys() }
        #expect(pair.server.peerFingerprint == nil)
    }

    @Test func fingerprintIsTheSDPsUppercaseColonSeparatedSHA256() throws {
        let certificate = try DTLSCertificate()
        let value = certificate.fingerprint.sdpValue
        #expect(value.hasPrefix("sha-256 "))
        let pairs = value.dropFirst("sha-256 ".count).split(separator: ":")
        #expect(pairs.count == 32)
        #expect(pairs.allSatisfy { $0.count == 2 && $0.allSatisfy { "0123456789ABCDEF".contains($0) } })
        let parsed = pairs.map { UInt8($0, radix: 16)! }
        #expect(DTLSFingerprint(sha256: parsed) == certificate.fingerprint)
        #expect(DTLSFingerprint(sha256: Array(parsed.dropLast())) == nil)
        #expect(certificate.fingerprint == DTLSFingerprint(certificateDER: certificate.certificateDER))
    }

    @Test func aBrokenCertificateIsRefusedWithOpenSSLsReason() throws {
        let good = try DTLSCertificate()
        let broken = DTLSCertificate(certificateDER: [0x30, 0x03, 0x02, 0x01, 0x01], privateKeyDER: good.privateKeyDER)
        do {
            _ = try DTLSContext(certificate: broken)
            Issue.record("a certificate that is not X.509 was taken")
        } catch {
            #expect(error == .context(error.contextReason ?? ""))
            #expect(error.contextReason?.contains("not DER X.509") == true, "\(error)")
        }
        let mismatched = DTLSCertificate(certificateDER: good.certificateDER,
                                         privateKeyDER: try DTLSCertificate().privateKeyDER)
        #expect(throws: DTLSError.self) { try DTLSContext(certificate: mismatched) }
    }

    @Test func aDroppedFlightIsResentWhenTheTimerFires() async throws {
        // MTU 300 splits the server's flight (certificate, key exchange,
        // certificate request) over several datagrams; the second is lost.
        // 50 ms: OpenSSL counts a timer with under 15 ms left as due and
        // also retransmits from within receive, so a shorter one would fire
        // while the flight is made.
        let pair = try DTLSPair(mtu: 300, serverTimeout: .milliseconds(50))
        for datagram in pair.client.outputDatagrams() { pair.server.receive(datagram) }
        let first = pair.server.outputDatagrams()
        for (index, datagram) in first.enumerated() where index != 1 { pair.client.receive(datagram) }
        // Whatever the client answers to the gap is lost as well, so only the
        // server's timer can bring the flight back.
        _ = pair.client.outputDatagrams()
        #expect(first.count >= 3, "a flight in several datagrams")
        #expect(first.allSatisfy { $0.readableBytes <= 300 })
        #expect(pair.client.state == .handshaking, "the client cannot finish without the lost datagram")
        #expect(pair.server.state == .handshaking)

        let due = try #require(pair.server.timeout, "the server's timer runs while it waits for the client")
        #expect(due <= .milliseconds(50))
        #expect(!pair.server.handleTimeout(), "not due yet")
        // OpenSSL keeps its timer on the wall clock: wait it out (50 ms).
        try await Task.sleep(for: due + .milliseconds(2))
        #expect(pair.server.handleTimeout())
        let resent = pair.server.outputDatagrams()
        #expect(!resent.isEmpty, "the flight again")
        #expect(resent.allSatisfy { $0.readableBytes <= 300 })
        for datagram in resent { pair.client.receive(datagram) }
        pair.exchange()
        #expect(pair.server.state == .established)
        #expect(pair.client.state == .established)
        #expect(try pair.server.keyingMaterial() == pair.client.keyingMaterial())
    }

    @Test func theTimerIsNotDueEarly() throws {
        let pair = try DTLSPair()
        for datagram in pair.client.outputDatagrams() { pair.server.receive(datagram) }
        _ = pair.server.outputDatagrams()
        let due = try #require(pair.server.timeout)
        #expect(due > .milliseconds(500), "OpenSSL's first timeout is 1 s")
        #expect(!pair.server.handleTimeout())
        #expect(pair.server.outputDatagrams().isEmpty)
    }

    @Test func aCloseNotifyEndsTheConnectionInOrder_eitherWay() throws {
        let pair = try DTLSPair()
        pair.exchange()
        pair.client.close()
        let alert = pair.client.outputDatagrams()
        #expect(alert.count == 1 && alert.first?.getInteger(at: 0, as: UInt8.self) == 21, "one alert record")
        #expect(pair.server.receive(alert[0]) == .closed("the peer closed the connection (close_notify)"))
        #expect(pair.server.timeout == nil)
        #expect(pair.server.receive(alert[0]) == pair.server.state, "closed for good")

        // camflow's side: a closed server sends its alert once, then nothing.
        let other = try DTLSPair()
        other.exchange()
        other.server.close()
        let sent = other.server.outputDatagrams()
        #expect(sent.count == 1)
        #expect(other.client.receive(sent[0]) == .closed("the peer closed the connection (close_notify)"))
        other.server.close()
        #expect(other.server.outputDatagrams().isEmpty)
        let fresh = try DTLSPair()
        fresh.server.close()
        #expect(fresh.server.outputDatagrams().isEmpty && fresh.server.state == .handshaking, "nothing to close before the handshake")
    }

    @Test func theServerRefusesRenegotiation() throws {
        let pair = try DTLSPair()
        pair.exchange()
        let material = try pair.server.keyingMaterial()
        #expect(pair.client.renegotiate())
        let hello = pair.client.outputDatagrams()
        #expect(!hello.isEmpty)
        for datagram in hello { pair.server.receive(datagram) }
        let answer = pair.server.outputDatagrams()
        // A ServerHello would be a handshake record (22); a refusal is an
        // alert (21).
        #expect(!answer.isEmpty)
        #expect(answer.allSatisfy { $0.getInteger(at: $0.readerIndex, as: UInt8.self) == 21 })
        #expect(pair.server.state == .established)
        #expect(try pair.server.keyingMaterial() == material)
        #expect(pair.server.peerFingerprint == pair.clientCertificate.fingerprint)
    }

    @Test func aMalformedClientHelloFailsTheConnection() throws {
        let pair = try DTLSPair()
        // A handshake record (22, DTLS 1.2, epoch 0) whose ClientHello body is cut short.
        let body: [UInt8] = [1, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 40] + [UInt8](repeating: 0xAB, count: 40)
        let header: [UInt8] = [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(body.count)]
        let state = pair.server.receive(ByteBuffer(bytes: header + body))
        guard case .failed(let reason) = state else {
            Issue.record("a malformed ClientHello left the server \(state)")
            return
        }
        #expect(!reason.isEmpty)
        #expect(pair.server.receive(ByteBuffer(bytes: header + body)) == state, "failed for good")
        #expect(pair.server.timeout == nil)
    }

    @Test func garbageDatagramsFailOrAreIgnoredWithoutLeaking() throws {
        let context = try DTLSContext(certificate: DTLSCertificate())
        let before = webRTCLiveObjects
        var generator = SplitMix64(seed: 29)
        var server = try DTLSTransport(context: context)
        var failed = 0
        var ignored = 0
        for index in 0..<10_000 {
            var bytes = (0..<(14 + Int(generator.next() % 300))).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            bytes[0] = 20 + UInt8(generator.next() % 44) // what the demultiplexer hands DTLS
            if index % 2 == 0 { // a plausible handshake record around garbage
                bytes.replaceSubrange(0..<5, with: [22, 0xFE, 0xFD, 0, 0]) // epoch 0
                bytes[11] = UInt8((bytes.count - 13) >> 8)
                bytes[12] = UInt8((bytes.count - 13) & 0xFF)
                bytes[13] = 1
            }
            switch server.receive(ByteBuffer(bytes: bytes)) {
            case .handshaking: ignored += 1
            case .failed, .closed:
                failed += 1
                server = try DTLSTransport(context: context)
            case .established: Issue.record("garbage completed a handshake")
            }
            _ = server.outputDatagrams()
        }
        #expect(failed + ignored == 10_000)
        #expect(failed > 0, "some garbage reached the handshake parser")
        // One connection (the latest) is alive, plus what another suite may
        // hold at this moment; a leak per datagram would leave thousands.
        #expect(webRTCLiveObjects - before < 100)
    }

    @Test func aMissingLibraryNamesItsDebianPackage() throws {
        try WebRTCLibraries.load()
        do {
            try WebRTCLibraries.probe(libssl: "libssl.so.3", libcrypto: "libcrypto.so.3",
                                      libsrtp: "libsrtp2-camflow-absent.so.1")
            Issue.record("a missing libsrtp2 was not noticed")
        } catch {
            #expect(error.library == "libsrtp2.so.1")
            #expect(error.debianPackage == "libsrtp2-1")
            #expect(error.description.contains("libsrtp2-camflow-absent.so.1"))
            #expect(error.description.contains("install the Debian package libsrtp2-1"))
        }
        #expect(throws: WebRTCLibraries.LoadError.self) {
            try WebRTCLibraries.probe(libssl: "libssl-camflow-absent.so.3", libcrypto: "libcrypto.so.3",
                                      libsrtp: "libsrtp2.so.1")
        }
        do {
            try WebRTCLibraries.probe(libssl: "libssl-camflow-absent.so.3", libcrypto: "libcrypto.so.3",
                                      libsrtp: "libsrtp2.so.1")
        } catch {
            #expect(error.debianPackage == "libssl3")
        }
        // A library without the functions: libsrtp2 in the place of libssl.
        do {
            try WebRTCLibraries.probe(libssl: "libsrtp2.so.1", libcrypto: "libcrypto.so.3", libsrtp: "libsrtp2.so.1")
            Issue.record("a libssl without SSL_CTX_new was taken")
        } catch {
            #expect(error.reason.contains("lacks SSL_CTX_new"))
        }
    }
}

extension DTLSError {
    var contextReason: String? {
        if case .context(let reason) = self { reason } else { nil }
    }
}

/// A small deterministic generator (SplitMix64), so a failure reproduces.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
