import NIOCore
import Testing
@testable import WebRTCProtocol

/// Offers camflow must refuse, each with its reason, and bounds that hold.
@Suite struct HostileOfferTests {
    static let codec = WHEPStreamCodec.h264(H264ProfileLevel(profileIDC: 0x42, constraints: 0xE0, levelIDC: 0x1F))

    static func edited(_ edit: (inout [String]) -> Void) -> String {
        var lines = Offers.chromium156.split(separator: "\r\n").map(String.init)
        edit(&lines)
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func code(_ text: String) -> WebRTCWireError.Code? {
        do {
            _ = try WHEPNegotiation(offer: SDPOffer(parsing: text), codec: codec)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func refusals_sayWhy() {
        #expect(Self.code(Self.edited { $0.removeAll { $0.hasPrefix("a=ice-ufrag") } }) == .missingICECredentials)
        #expect(Self.code(Self.edited { $0.removeAll { $0.hasPrefix("a=ice-pwd") } }) == .missingICECredentials)
        #expect(Self.code(Self.edited { lines in
            lines = lines.map { $0.hasPrefix("a=fingerprint") ? "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33" : $0 }
        }) == .missingFingerprint)
        #expect(Self.code(Self.edited { $0 = $0.map { $0 == "a=setup:actpass" ? "a=setup:passive" : $0 } }) == .setupPassive)
        #expect(Self.code(Self.edited { $0 = $0.map { $0 == "a=setup:actpass" ? "a=setup:active" : $0 } }) == nil)
        #expect(Self.code(Self.edited { $0.removeAll { $0 == "a=rtcp-mux" } }) == .missingRTCPMux)
        #expect(Self.code(Self.edited { $0 = $0.map { $0.replacing("packetization-mode=1", with: "packetization-mode=0") } }) == .noUsableCodec)
        #expect(Self.code(Self.edited { $0 = $0.map { $0.replacing("H264/", with: "VP8/") } }) == .noUsableCodec)
        #expect(Self.code(Self.edited { $0 = $0.map { $0 == "a=recvonly" ? "a=sendonly" : $0 } }) == .noUsableVideo)
        #expect(Self.code(Self.edited { $0 = $0.map { $0.replacing("m=video 9", with: "m=video 0") } }) == .noUsableVideo)
        #expect(Self.code(Self.edited { $0 = $0.map { $0.replacing("m=video", with: "m=text") } }) == .noUsableVideo)
        let refusal = WebRTCWireError(.noUsableCodec, "")
        #expect(refusal.httpStatus == 406 && WebRTCWireError(.setupPassive, "").httpStatus == 400)
    }

    @Test(arguments: [
        ("ice-ufrag:a b", WebRTCWireError.Code.malformed), ("ice-ufrag:ab!d", .malformed), ("ice-pwd:short", .malformed),
        ("fingerprint:sha-256 AB:CD", .malformed), ("fingerprint:sha-256 ZZ:" + String(repeating: "00:", count: 30) + "00", .malformed),
        ("fingerprint:sha-256", .malformed), ("setup:sideways", .malformed), ("mid:a,b", .malformed),
        ("rtpmap:200 H264/90000", .malformed), ("rtpmap:108 H264", .malformed), ("rtpmap:108 H264/0", .malformed),
        ("rtpmap:96 VP8/90000", .malformed), ("fmtp:300 x=1", .malformed), ("fmtp:108", .malformed),
        ("fmtp:108 caf\u{E9}=1", .malformed), ("rtcp-fb:108", .malformed), ("extmap:0 urn:x", .malformed),
        ("extmap:1/upward urn:x", .malformed), ("mid:" + String(repeating: "m", count: 65), .malformed),
    ])
    func badAttributes_areRefused(_ attribute: String, code: WebRTCWireError.Code) {
        let text = Self.edited { $0.insert("a=" + attribute, at: 12) }
        #expect(throws: WebRTCWireError.self) { try SDPOffer(parsing: text) }
        do { _ = try SDPOffer(parsing: text) } catch { #expect(error.code == code, "\(attribute): \(error)") }
    }

    @Test(arguments: [
        ("empty", WebRTCWireError.Code.malformed), ("no version", .malformed), ("version 1", .malformed),
        ("NUL", .malformed), ("no equals", .malformed), ("m= short", .malformed), ("m= port", .malformed),
        ("64 KiB", .tooLarge), ("long line", .tooLarge), ("17 sections", .tooLarge), ("513 attributes", .tooLarge),
        ("4097 lines", .tooLarge), ("129 formats", .tooLarge), ("9 bundle groups", .tooLarge),
    ])
    func hostileOffers_areTypedErrors(_ what: String, code: WebRTCWireError.Code) {
        let base = Offers.chromium156
        let text: String = switch what {
        case "empty": ""
        case "no version": String(base.dropFirst(5))
        case "version 1": "v=1\r\n" + base.dropFirst(5)
        case "NUL": Self.edited { $0.insert("a=x\u{0}y", at: 5) }
        case "no equals": Self.edited { $0.insert("hello", at: 5) }
        case "m= short": Self.edited { $0.append("m=video 9") }
        case "m= port": Self.edited { $0.append("m=video 70000 UDP/TLS/RTP/SAVPF 96") }
        case "64 KiB": base + String(repeating: "a=x-pad:" + String(repeating: "p", count: 1000) + "\r\n", count: 64)
        case "long line": Self.edited { $0.insert("a=x:" + String(repeating: "y", count: 2050), at: 5) }
        case "17 sections": base + String(repeating: "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\n", count: 15)
        case "513 attributes": base + String(repeating: "a=x\r\n", count: 513)
        case "4097 lines": "v=0\r\n" + String(repeating: "b=AS:1\r\n", count: 4097)
        case "129 formats": "v=0\r\nm=video 9 RTP/AVP " + (0..<129).map { String($0 % 128) }.joined(separator: " ") + "\r\n"
        default: Self.edited { $0.insert(contentsOf: Array(repeating: "a=group:BUNDLE 0", count: 9), at: 4) }
        }
        do {
            _ = try SDPOffer(parsing: text)
            Issue.record("\(what) was accepted")
        } catch {
            #expect(error.code == code, "\(what): \(error)")
        }
    }

    @Test func bodies_areCheckedBeforeDecoding() {
        #expect(throws: WebRTCWireError.self) { try SDPOffer(parsing: ByteBuffer(bytes: [UInt8](repeating: 0x61, count: 65537))) }
        do { _ = try SDPOffer(parsing: ByteBuffer(bytes: [0x76, 0x3D, 0x30, 0x0D, 0x0A, 0xFF, 0xFE])) } catch {
            #expect(error.code == .malformed)
        }
    }

    @Test func unknownLinesAreSkipped_andFirstAttributeWins() throws {
        let text = Self.edited { lines in
            lines.insert("a=fingerprint:sha-512 " + String(repeating: "00:", count: 63) + "00", at: 12)
            lines.insert("i=anything at all", at: 12)
            lines.insert("a=fmtp:108 profile-level-id=000000", at: lines.firstIndex { $0.hasPrefix("m=audio") }!)
        }
        let offer = try SDPOffer(parsing: text)
        #expect(offer.sections[0].transport.sha256Fingerprint == Offers.fingerprintBytes)
        #expect(offer.sections[0].formatParameters[108]?.hasSuffix("42e01f") == true)
    }
}
