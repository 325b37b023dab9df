import Crypto
import NIOCore
import Testing
@testable import WebRTCProtocol

/// RFC 5769's sample messages, byte for byte, and what camflow writes itself.
@Suite struct STUNVectorTests {
    static let password = "VOkJxbRl1RmTxUk/WvJxBt"
    static let key = SymmetricKey(data: Array(password.utf8))
    static let transactionID = STUNTransactionID(high: 0xB7E7_A701, low: 0xBC34_D686_FA87_DFAE)

    static func hex(_ text: String) -> [UInt8] {
        let digits = Array(text.filter { $0.isHexDigit })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    /// RFC 5769 §2.1.
    static let request = hex("""
        00010058 2112a442 b7e7a701 bc34d686 fa87dfae 80220010 5354554e 20746573 7420636c 69656e74
        00240004 6e0001ff 80290008 932ff9b1 51263b36 00060009 6576746a 3a683676 59202020
        00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2 80280004 e57a3bcf
        """)
    /// RFC 5769 §2.2.
    static let responseIPv4 = hex("""
        0101003c 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563 746f7220
        00200008 0001a147 e112a643 00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7 80280004 c07d4c96
        """)
    /// RFC 5769 §2.3.
    static let responseIPv6 = hex("""
        01010048 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563 746f7220
        00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9 00080014 a382954e 4be67bf1 1784c97c
        8292c275 bfe3ed41 80280004 c8fb0b4c
        """)

    @Test func crc32_isZlibs() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func sampleRequest_parsesAndVerifies() throws {
        let message = try STUNMessage(parsing: ByteBuffer(bytes: Self.request))
        #expect(message.isBindingRequest && message.messageClass == .request && message.method == 1)
        #expect(message.transactionID == Self.transactionID)
        #expect(message.username == "evtj:h6vY")
        #expect(message.priority == 0x6E00_01FF)
        #expect(message.iceControlled == 0x932F_F9B1_5126_3B36)
        #expect(message.iceControlling == nil && !message.useCandidate)
        #expect(message.verifyFingerprint() == true)
        #expect(message.verifyIntegrity(key: Self.key))
        #expect(!message.verifyIntegrity(key: SymmetricKey(data: Array("VOkJxbRl1RmTxUk/WvJxBT".utf8))))
    }

    @Test func sampleRequest_writtenByteForByte() throws {
        var writer = STUNMessageWriter(type: STUNMessageWriter.bindingRequestType, transactionID: Self.transactionID)
        try writer.append(STUNAttributeType.software, Array("STUN test client".utf8))
        try writer.appendPriority(0x6E00_01FF)
        try writer.appendICEControlled(0x932F_F9B1_5126_3B36)
        try writer.append(STUNAttributeType.username, Array("evtj:h6vY".utf8), padding: 0x20)
        try writer.appendMessageIntegrity(key: Self.key)
        try writer.appendFingerprint()
        #expect(Array(writer.bytes.readableBytesView) == Self.request)
    }

    @Test(arguments: [(false, "192.0.2.1:32853"), (true, "[2001:db8:1234:5678:11:2233:4455:6677]:32853")])
    func sampleResponses_parseVerifyAndWriteByteForByte(ipv6: Bool, address: String) throws {
        let bytes = ipv6 ? Self.responseIPv6 : Self.responseIPv4
        let message = try STUNMessage(parsing: ByteBuffer(bytes: bytes))
        #expect(message.messageClass == .successResponse && message.transactionID == Self.transactionID)
        #expect(message.verifyFingerprint() == true && message.verifyIntegrity(key: Self.key))
        let mapped = try #require(message.xorMappedAddress)
        #expect(mapped.description == address)

        var writer = STUNMessageWriter(type: STUNMessageWriter.bindingSuccessType, transactionID: Self.transactionID)
        try writer.append(STUNAttributeType.software, Array("test vector".utf8), padding: 0x20)
        try writer.appendXORMappedAddress(mapped)
        try writer.appendMessageIntegrity(key: Self.key)
        try writer.appendFingerprint()
        #expect(Array(writer.bytes.readableBytesView) == bytes)
    }

    @Test func bindingSuccess_isWhatTheDesignSays() throws {
        let v4 = STUNAddress(ipv4: 0xC000_0201, port: 32853)
        let v6 = STUNAddress(ipv6High: 0x2001_0DB8_1234_5678, low: 0x0011_2233_4455_6677, port: 32853)
        for (address, size) in [(v4, 64), (v6, 76)] {
            let bytes = STUNMessageWriter.bindingSuccess(transactionID: Self.transactionID, mapped: address, key: Self.key)
            #expect(bytes.readableBytes == size)
            let message = try STUNMessage(parsing: bytes)
            #expect(message.type == 0x0101 && message.xorMappedAddress == address && message.username == nil)
            #expect(message.attributes.map(\.type) == [0x0020, 0x0008, 0x8028])
            #expect(message.verifyIntegrity(key: Self.key) && message.verifyFingerprint() == true)
        }
    }

    @Test(arguments: [(400, true), (401, false), (487, true)])
    func bindingErrors_carryTheirCode(code: Int, signed: Bool) throws {
        let bytes = try STUNMessageWriter.bindingError(transactionID: Self.transactionID, code: code, reason: "Role Conflict",
                                                       key: signed ? Self.key : nil)
        let message = try STUNMessage(parsing: bytes)
        #expect(message.messageClass == .errorResponse && message.method == 1)
        #expect(message.errorCode?.code == code && message.errorCode?.reason == "Role Conflict")
        #expect(message.verifyFingerprint() == true)
        #expect(message.verifyIntegrity(key: Self.key) == signed)
        #expect(throws: WebRTCWireError.self) {
            try STUNMessageWriter.bindingError(transactionID: Self.transactionID, code: 700, reason: "", key: nil)
        }
    }

    @Test func addresses_convertToAndFromNIO() throws {
        for text in ["192.0.2.1", "2001:db8:1234:5678:11:2233:4455:6677", "::1"] {
            let socket = try SocketAddress(ipAddress: text, port: 50123)
            let address = try #require(STUNAddress(socket))
            #expect(address.port == 50123)
            #expect(try address.socketAddress == socket)
        }
        #expect(STUNAddress(try SocketAddress(ipAddress: "10.1.2.3", port: 9))?.host == "10.1.2.3")
        #expect(STUNAddress(try SocketAddress(ipAddress: "::1", port: 9))?.host == "0:0:0:0:0:0:0:1")
    }

    @Test func demux_byFirstByte() {
        func kind(_ bytes: [UInt8]) -> WebRTCPacketKind { WebRTCDemux.classify(ByteBuffer(bytes: bytes)) }
        #expect(kind(Self.request) == .stun)
        #expect(kind([22, 0xFE, 0xFD]) == .dtls && kind([63]) == .dtls && kind([20]) == .dtls)
        #expect(kind([0x80, 200]) == .rtcp && kind([0x81, 205]) == .rtcp && kind([0x80, 223]) == .rtcp)
        #expect(kind([0x80, 96]) == .rtp && kind([0x80, 0xE0]) == .rtp && kind([0xBF, 0x6C]) == .rtp)
        #expect(kind([]) == .other && kind([16]) == .other && kind([64]) == .other && kind([192]) == .other && kind([0x80]) == .other)
        #expect(STUNMessage.looksLikeSTUN(ByteBuffer(bytes: Self.request)))
        #expect(!STUNMessage.looksLikeSTUN(ByteBuffer(bytes: [0, 1, 0, 0] + [UInt8](repeating: 0, count: 16))))
    }
}
