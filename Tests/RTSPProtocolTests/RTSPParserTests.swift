import NIOCore
import RTSPProtocol
import Testing

@Suite struct RTSPParserTests {
    @Test func parsesARequest() throws {
        var parser = RTSPParser()
        parser.append(ByteBuffer(string: "OPTIONS rtsp://h/s RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
        guard case .request(let request) = try parser.next() else { Issue.record("no request"); return }
        #expect(request.method == .options && request.cseq == 1)
    }
}
