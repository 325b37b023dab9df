import NIOCore
import RTSPProtocol
import Testing

/// Feeds `text` in chunks of `size` bytes and collects every frame.
func frames(_ bytes: ByteBuffer, chunk size: Int, limits: RTSPParserLimits = RTSPParserLimits()) throws -> [RTSPFrame] {
    var parser = RTSPParser(limits: limits)
    var result: [RTSPFrame] = []
    var input = bytes
    while input.readableBytes > 0 {
        parser.append(input.readSlice(length: min(size, input.readableBytes))!)
        while let frame = try parser.next() { result.append(frame) }
    }
    return result
}

func frames(_ text: String, chunk size: Int = 1 << 20, limits: RTSPParserLimits = RTSPParserLimits()) throws -> [RTSPFrame] {
    try frames(ByteBuffer(string: text), chunk: size, limits: limits)
}

func parseError(_ text: String, limits: RTSPParserLimits = RTSPParserLimits()) -> RTSPParseError? {
    do {
        _ = try frames(text, limits: limits)
        return nil
    } catch {
        return error as? RTSPParseError
    }
}

@Suite struct RTSPParserTests {
    static let describe = "DESCRIBE rtsp://cam/live RTSP/1.0\r\nCSeq: 2\r\naccept:  application/sdp \r\nUser-Agent: ffmpeg\r\n\r\n"

    @Test func readsARequestWithCaseInsensitiveHeaders() throws {
        let result = try frames(Self.describe)
        guard result.count == 1, case .request(let request) = result[0] else { Issue.record("\(result)"); return }
        #expect(request.method == .describe && request.uri == "rtsp://cam/live" && request.cseq == 2)
        #expect(request.headers["ACCEPT"] == "application/sdp" && request.headers["user-agent"] == "ffmpeg")
        #expect(request.headers["CSeq"] == nil, "CSeq is read into the field")
    }

    @Test func readsAResponseWithABody() throws {
        let text = "RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"
        let result = try frames(text)
        guard result.count == 1, case .response(let response) = result[0] else { Issue.record("\(result)"); return }
        #expect(response.status == 200 && response.reason == "OK" && response.cseq == 3)
        #expect(String(buffer: response.body) == "v=0\r\n")
    }

    @Test func aTrickleOfSingleBytesGivesTheSameFrames() throws {
        var stream = ByteBuffer(string: Self.describe)
        _ = RTSPInterleaved.writeHeader(channel: 1, length: 3, into: &stream)
        stream.writeBytes([9, 8, 7])
        stream.writeString("RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Length: 2\r\n\r\nhi")
        let whole = try frames(stream, chunk: stream.readableBytes)
        let trickle = try frames(stream, chunk: 1)
        #expect(whole.count == 3)
        #expect(trickle == whole)
    }

    @Test func interleavedFramesAreSlicesBetweenMessages() throws {
        var stream = ByteBuffer()
        _ = RTSPInterleaved.writeHeader(channel: 0, length: 65535, into: &stream)
        stream.writeBytes([UInt8](repeating: 0xAB, count: 65535))
        stream.writeString(Self.describe)
        _ = RTSPInterleaved.writeHeader(channel: 3, length: 0, into: &stream)
        // Split inside the 16-bit length and inside the payload.
        var parser = RTSPParser()
        var result: [RTSPFrame] = []
        for cut in [3, 40000, stream.readableBytes - 40003] {
            parser.append(stream.readSlice(length: cut)!)
            while let frame = try parser.next() { result.append(frame) }
        }
        #expect(result.count == 3)
        guard case .interleaved(let channel, let payload) = result[0], case .request = result[1],
              case .interleaved(let last, let empty) = result[2] else { Issue.record("\(result.count) frames"); return }
        #expect(channel == 0 && payload.readableBytes == 65535 && payload.readableBytesView.allSatisfy { $0 == 0xAB })
        #expect(last == 3 && empty.readableBytes == 0)
        #expect(!parser.isMidMessage)
    }

    @Test func aWholeChunkOfFramesIsSlicedNotCopied() throws {
        var chunk = ByteBuffer()
        _ = RTSPInterleaved.writeHeader(channel: 2, length: 4, into: &chunk)
        chunk.writeBytes([1, 2, 3, 4])
        var parser = RTSPParser()
        parser.append(chunk)
        guard case .interleaved(_, let payload) = try parser.next() else { Issue.record("no frame"); return }
        let shared = payload.withUnsafeReadableBytes { slice in
            chunk.withUnsafeReadableBytes { whole in slice.baseAddress == whole.baseAddress! + 4 }
        }
        #expect(shared, "the payload points into the chunk received")
    }

    @Test func refusesWhatBreaksTheRules() {
        #expect(parseError("OPTIONS * RTSP/1.0\r\n\r\n") == .missingCSeq)
        #expect(parseError("OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n") == .unsupportedVersion("RTSP/2.0"))
        #expect(parseError("OPTIONS * HTTP/1.1\r\nCSeq: 1\r\n\r\n") == .malformedStartLine("OPTIONS * HTTP/1.1"))
        #expect(parseError("OPTIONS *\r\n\r\n") == .malformedStartLine("OPTIONS *"))
        #expect(parseError("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n folded\r\n\r\n") == .foldedHeader(line: 2))
        #expect(parseError("OPTIONS * RTSP/1.0\r\nCSeq: one\r\n\r\n") == .invalidCSeq("one"))
        #expect(parseError("OPTIONS * RTSP/1.0\r\nCSeq 1\r\n\r\n") == .malformedHeader(line: 1, reason: "no colon"))
        #expect(parseError("RTSP/1.0 2000 OK\r\nCSeq: 1\r\n\r\n") == .malformedStartLine("RTSP/1.0 2000 OK"))
    }

    @Test(arguments: ["-1", "9223372036854775808", "18446744073709551616", "1e3", "", "+5"])
    func refusesHostileContentLengths(_ value: String) {
        let error = parseError("SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: \(value)\r\n\r\n")
        #expect(error == .invalidContentLength(value) || error == .bodyTooLarge(limit: 65536), "\(String(describing: error))")
        #expect(error?.status == 400 || error?.status == 413)
    }

    @Test func refusesABodyOverTheLimitBeforeReadingIt() {
        let limits = RTSPParserLimits(bodyBytes: 10)
        #expect(parseError("ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 11\r\n\r\n", limits: limits) == .bodyTooLarge(limit: 10))
        #expect(parseError("ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\n") == .conflictingContentLength)
    }

    @Test func aHeaderLineOfAMebibyteFailsAtTheLimitNotAtItsEnd() {
        var parser = RTSPParser()
        parser.append(ByteBuffer(string: "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: "))
        var failed: RTSPParseError?
        var fed = 0
        let block = ByteBuffer(repeating: UInt8(ascii: "a"), count: 4096)
        while fed < 1 << 20, failed == nil {
            parser.append(block)
            fed += block.readableBytes
            do { _ = try parser.next() } catch { failed = error }
        }
        #expect(failed == .headersTooLong(limit: 16384))
        #expect(fed <= 20480, "stopped within the limit plus one chunk, not after \(fed) bytes")
        #expect(parser.bufferedBytes <= 20480 + 64)
    }

    @Test func aStartLineOverFourKibibytesIsRefused() {
        let long = "DESCRIBE rtsp://h/" + String(repeating: "x", count: 5000) + " RTSP/1.0\r\nCSeq: 1\r\n\r\n"
        #expect(parseError(long) == .startLineTooLong(limit: 4096))
        #expect(parseError(String(repeating: "y", count: 5000)) == .startLineTooLong(limit: 4096))
    }

    @Test func tenThousandHeadersStopAtSixtyFour() {
        var text = "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n"
        for index in 0..<10_000 { text += "X-\(index): v\r\n" }
        #expect(parseError(text + "\r\n") == .tooManyHeaders(limit: 64))
    }

    @Test func onceFailedItStaysFailed() {
        var parser = RTSPParser()
        parser.append(ByteBuffer(string: "BAD\r\n"))
        #expect(throws: RTSPParseError.self) { try parser.next() }
        parser.append(ByteBuffer(string: Self.describe))
        #expect(throws: RTSPParseError.self) { try parser.next() }
    }

    @Test func errorsDoNotEchoHeaderValues() {
        let error = parseError("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic c2VjcmV0\u{1}\r\n\r\n")
        #expect(error != nil)
        #expect(!(error?.description.contains("c2VjcmV0") ?? true))
    }

    @Test func writesARequestAndAResponseTheParserReadsBack() throws {
        var headers = RTSPHeaders()
        headers.setSession("12345678", timeout: 60)
        headers.setTransport([RTSPTransport(lower: .tcp, interleaved: 0...1)])
        headers.setRTPInfo([RTPInfo(url: "rtsp://h/s/trackID=0", sequence: 7, rtpTime: 90000)])
        headers.setPublic(RTSPServerSession.publicMethods)
        headers.setChallenges(["Digest realm=\"camflow\", nonce=\"n\"", "Basic realm=\"camflow\""])
        headers.add("X-Injected", "a\r\nCSeq: 99")
        let response = RTSPResponse(status: 200, cseq: 4, headers: headers, body: ByteBuffer(string: "v=0\r\n"))
        let text = String(buffer: response.bytes)
        #expect(text.hasPrefix("RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 12345678;timeout=60\r\n"))
        #expect(text.contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"))
        #expect(text.contains("RTP-Info: url=rtsp://h/s/trackID=0;seq=7;rtptime=90000\r\n"))
        #expect(text.contains("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"))
        #expect(text.contains("Content-Length: 5\r\n\r\nv=0\r\n"))
        let back = try frames(text)
        guard case .response(let read) = back.first else { Issue.record("\(back)"); return }
        #expect(read.cseq == 4 && read.headers.values("WWW-Authenticate").count == 2)
        #expect(read.headers["X-Injected"] == "a  CSeq: 99", "a value cannot add a header")
        #expect(read.headers.session == RTSPSessionHeader(id: "12345678", timeout: 60))

        headers.remove("x-injected")
        let request = RTSPRequest(method: .setup, uri: "rtsp://h/s/trackID=1", cseq: 5, headers: headers)
        guard case .request(let again) = try frames(String(buffer: request.bytes)).first else { Issue.record("no request"); return }
        #expect(again == request)
    }

    @Test func rtpInfoReadsBack() {
        let info = RTPInfo.parse("url=rtsp://h/s/trackID=0;seq=1;rtptime=2, url=rtsp://h/s/trackID=1;seq=65535;rtptime=4294967295")
        #expect(info == [RTPInfo(url: "rtsp://h/s/trackID=0", sequence: 1, rtpTime: 2),
                         RTPInfo(url: "rtsp://h/s/trackID=1", sequence: 65535, rtpTime: 4294967295)])
        #expect(RTPInfo.parse("url=x;seq=65536") == nil)
        #expect(RTSPSessionHeader(parsing: "abc;timeout=0") == nil)
        #expect(RTSPSessionHeader(parsing: "a b") == nil)
    }
}

@Suite struct RTSPParserMemoryTests {
    /// Chunks that always end mid-frame never empty the buffer; what was
    /// returned must still be let go.
    @Test func aLongStreamCutMidFrameStaysBounded() throws {
        var frame = ByteBuffer()
        _ = RTSPInterleaved.writeHeader(channel: 0, length: 96, into: &frame)
        frame.writeBytes([UInt8](repeating: 1, count: 96))
        var stream = ByteBuffer()
        for _ in 0..<100 { stream.writeImmutableBuffer(frame) }
        var parser = RTSPParser()
        var count = 0
        var maximum = 0
        var carry = ByteBuffer()
        for round in 0..<300 {
            // 10,000 bytes per round with a 37-byte shift: never a frame boundary at a chunk's end.
            var chunk = carry
            chunk.writeImmutableBuffer(stream)
            let cut = chunk.readableBytes - 37 - (round % 50)
            let head = chunk.readSlice(length: cut)!
            carry = chunk
            parser.append(head)
            while try parser.next() != nil { count += 1 }
            maximum = max(maximum, parser.bufferCapacity)
        }
        #expect(count >= 29_000)
        #expect(maximum <= 256 * 1024, "buffer grew to \(maximum) bytes over 3 MB")
    }
}
