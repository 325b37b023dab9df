import Crypto
import NIOCore
import Testing
@testable import WebRTCProtocol

/// ICE checks as Chromium sends them, and everything a stranger could send instead.
@Suite struct STUNCheckTests {
    static let local = try! ICECredentials(ufrag: "camFLOW1", password: "abcdefghijklmnopqrstuvwx")
    static let check = STUNRequestCheck(localUfrag: local.ufrag, localPassword: local.password, remoteUfrag: "Xq3k")
    static let tid = STUNTransactionID(high: 1, low: 2)

    /// Chromium's check: USERNAME, PRIORITY, ICE-CONTROLLING, GOOG-NETWORK-INFO, [USE-CANDIDATE], MI, FINGERPRINT.
    static func request(username: String = "camFLOW1:Xq3k", password: String = "abcdefghijklmnopqrstuvwx", useCandidate: Bool = false,
                        controlled: Bool = false, fingerprint: Bool = true, type: UInt16 = 0x0001) throws -> ByteBuffer {
        var writer = STUNMessageWriter(type: type, transactionID: tid)
        try writer.appendUsername(username)
        try writer.appendPriority(1_853_824_767)
        if controlled { try writer.appendICEControlled(7) } else { try writer.appendICEControlling(0x1234_5678_9ABC_DEF0) }
        try writer.append(0xC057, [0, 1, 0, 10])
        if useCandidate { try writer.appendUseCandidate() }
        try writer.appendMessageIntegrity(key: SymmetricKey(data: Array(password.utf8)))
        if fingerprint { try writer.appendFingerprint() }
        return writer.bytes
    }

    @Test func chromiumsCheck_isAccepted() throws {
        let checked = try Self.check.check(datagram: Self.request(useCandidate: true))
        #expect(checked.remoteUfrag == "Xq3k" && checked.useCandidate && checked.transactionID == Self.tid)
        #expect(checked.priority == 1_853_824_767 && checked.iceControlling == 0x1234_5678_9ABC_DEF0)
        #expect(try !Self.check.check(datagram: Self.request()).useCandidate)
        #expect(try Self.check.check(datagram: Self.request(fingerprint: false)).remoteUfrag == "Xq3k")
        #expect(STUNRequestCheck.localUfrag(of: try STUNMessage(parsing: Self.request())) == "camFLOW1")

        let source = STUNAddress(ipv4: 0x7F00_0001, port: 50000)
        let response = try STUNMessage(parsing: Self.check.successResponse(to: checked, from: source))
        #expect(response.transactionID == Self.tid && response.xorMappedAddress == source)
        #expect(response.verifyIntegrity(key: Self.check.key) && response.verifyFingerprint() == true)
    }

    @Test(arguments: [
        ("wrong password", WebRTCWireError.Code.integrity),
        ("other session", .username), ("other peer", .username), ("no colon", .username), ("empty remote", .username),
        ("controlled", .roleConflict), ("indication", .notBindingRequest), ("success response", .notBindingRequest),
    ])
    func badChecks_areRefused(_ what: String, code: WebRTCWireError.Code) throws {
        let datagram = switch what {
        case "wrong password": try Self.request(password: "abcdefghijklmnopqrstuvwX")
        case "other session": try Self.request(username: "camFLOW2:Xq3k")
        case "other peer": try Self.request(username: "camFLOW1:Zz9z")
        case "no colon": try Self.request(username: "camFLOW1")
        case "empty remote": try Self.request(username: "camFLOW1:")
        case "controlled": try Self.request(controlled: true)
        case "indication": try Self.request(type: 0x0011)
        default: try Self.request(type: 0x0101)
        }
        #expect(throws: WebRTCWireError.self) { try Self.check.check(datagram: datagram) }
        do { _ = try Self.check.check(datagram: datagram) } catch { #expect(error.code == code) }
    }

    @Test func tamperedBytes_failFingerprintOrIntegrity() throws {
        let good = Array(try Self.request().readableBytesView)
        // A byte of USERNAME's value changed: FINGERPRINT catches it before any HMAC.
        var tampered = good
        tampered[26] ^= 0x01
        do { _ = try Self.check.check(datagram: ByteBuffer(bytes: tampered)); Issue.record("accepted") } catch {
            #expect(error.code == .fingerprint)
        }
        // Without FINGERPRINT, MESSAGE-INTEGRITY catches it.
        var bare = Array(try Self.request(fingerprint: false).readableBytesView)
        bare[bare.count - 26] ^= 0x01  // GOOG-NETWORK-INFO's value
        do { _ = try Self.check.check(datagram: ByteBuffer(bytes: bare)); Issue.record("accepted") } catch {
            #expect(error.code == .integrity)
        }
        // No MESSAGE-INTEGRITY at all.
        var writer = STUNMessageWriter(type: 1, transactionID: Self.tid)
        try writer.appendUsername("camFLOW1:Xq3k")
        try writer.appendFingerprint()
        do { _ = try Self.check.check(datagram: writer.bytes); Issue.record("accepted") } catch { #expect(error.code == .integrity) }
    }

    static let header: [UInt8] = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 7, count: 12)

    static func message(_ attributes: [UInt8], lengthDelta: Int = 0) -> ByteBuffer {
        var bytes = header + attributes
        let length = attributes.count + lengthDelta
        bytes[2] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[3] = UInt8(truncatingIfNeeded: length)
        return ByteBuffer(bytes: bytes)
    }

    @Test(arguments: [
        ("19 bytes", WebRTCWireError.Code.truncated), ("top bits", .badHeader), ("magic", .badHeader),
        ("length not multiple of 4", .badLength), ("length past the end", .badLength), ("length short", .badLength),
        ("attribute overruns", .badLength), ("attribute header cut", .badLength),
        ("integrity 19 bytes", .malformed), ("fingerprint 8 bytes", .malformed), ("after fingerprint", .malformed),
        ("33 attributes", .tooLarge), ("1281 bytes", .tooLarge),
    ])
    func hostileMessages_areTypedErrors(_ what: String, code: WebRTCWireError.Code) {
        let empty4: [UInt8] = [0x80, 0x00, 0x00, 0x00]
        let datagram: ByteBuffer = switch what {
        case "19 bytes": ByteBuffer(bytes: Array(Self.header.prefix(19)))
        case "top bits": ByteBuffer(bytes: [0x40] + Self.header.dropFirst())
        case "magic": ByteBuffer(bytes: Array(Self.header.prefix(4)) + [0x21, 0x12, 0xA4, 0x43] + Self.header.suffix(12))
        case "length not multiple of 4": Self.message([0x80, 0x00, 0x00, 0x01, 1, 0, 0], lengthDelta: 0)
        case "length past the end": Self.message(empty4, lengthDelta: 4)
        case "length short": Self.message(empty4 + empty4, lengthDelta: -4)
        case "attribute overruns": Self.message([0x80, 0x00, 0x00, 0x08, 1, 2, 3, 4])
        case "attribute header cut": Self.message(empty4 + [0x00, 0x06, 0x00, 0x05])
        case "integrity 19 bytes": Self.message([0x00, 0x08, 0x00, 0x13] + [UInt8](repeating: 0, count: 20))
        case "fingerprint 8 bytes": Self.message([0x80, 0x28, 0x00, 0x08] + [UInt8](repeating: 0, count: 8))
        case "after fingerprint": Self.message([0x80, 0x28, 0x00, 0x04, 0, 0, 0, 0] + empty4)
        case "33 attributes": Self.message(Array([[UInt8]](repeating: empty4, count: 33).joined()))
        default: Self.message([0x80, 0x00, 0x04, 0xEC] + [UInt8](repeating: 0, count: 1260))
        }
        do {
            _ = try STUNMessage(parsing: datagram)
            Issue.record("\(what) was accepted")
        } catch {
            #expect(error.code == code, "\(what): \(error)")
        }
    }

    @Test func attributesAfterIntegrity_areIgnored_andValuesAreSlices() throws {
        var writer = STUNMessageWriter(type: 1, transactionID: Self.tid)
        try writer.appendUsername("camFLOW1:Xq3k")
        try writer.appendMessageIntegrity(key: Self.check.key)
        try writer.appendUseCandidate()  // after MI: must not count
        let message = try STUNMessage(parsing: writer.bytes)
        #expect(!message.useCandidate && message.attributes.count == 2)
        let username = try #require(message.value(of: STUNAttributeType.username))
        #expect(username.withUnsafeReadableBytes { $0.baseAddress } == message.bytes.withUnsafeReadableBytes { $0.baseAddress! + 24 })
        // A USERNAME that is not UTF-8 is no username.
        var bad = STUNMessageWriter(type: 1, transactionID: Self.tid)
        try bad.append(STUNAttributeType.username, [0xFF, 0xFE, 0x3A, 0x41])
        #expect(try STUNMessage(parsing: bad.bytes).username == nil)
        #expect(throws: WebRTCWireError.self) { try bad.append(0x8000, [UInt8](repeating: 0, count: 1300)) }
    }

    /// Found by the `stun` fuzz target (Fuzz/regressions/stun/32-attributes-signed-again): 32 attributes read,
    /// signed again with MESSAGE-INTEGRITY and FINGERPRINT, made 34 the reader refused.
    @Test func writer_refusesWhatTheReaderWould() throws {
        var writer = STUNMessageWriter(type: 1, transactionID: Self.tid)
        for _ in 0..<STUNMessage.maxAttributes { try writer.append(0x8000, [UInt8]()) }
        #expect(throws: WebRTCWireError.self) { try writer.appendMessageIntegrity(key: Self.check.key) }
        #expect(throws: WebRTCWireError.self) { try writer.appendFingerprint() }
        #expect(try STUNMessage(parsing: writer.bytes).attributes.count == STUNMessage.maxAttributes)
    }
}
