import NIOCore
import RTSPProtocol

/// The readers of an RTSP connection over the same bytes: the message
/// parser (fed in chunks whose size the first byte picks, so the fuzzer
/// explores every cut), then the rest as SDP, as a Transport header and as
/// a Digest challenge and authorization. Whatever is accepted must write
/// back to something the same reader accepts again.
func fuzzRTSP(_ bytes: UnsafeRawBufferPointer) {
    guard let first = bytes.first else { return }
    let data = ByteBuffer(bytes: bytes.dropFirst())
    var parser = RTSPParser(limits: RTSPParserLimits(startLineBytes: 512, headerBytes: 2048, headerCount: 16, bodyBytes: 2048))
    var input = data
    let chunk = Int(first) + 1
    // Whatever the stream carries also drives both state machines: requests
    // a server session, responses a client that has sent its OPTIONS.
    var server = RTSPServerSession(timeout: 10)
    var client = RTSPClientSession(url: "rtsp://h/s", username: "u", password: "p", transport: first & 1 == 0 ? .tcp : .udp(firstClientPort: 5000))
    var random = FuzzRandom()
    _ = client.start(random: &random)
    var now = Duration.zero
    feeding: while input.readableBytes > 0 {
        parser.append(input.readSlice(length: min(chunk, input.readableBytes))!)
        do {
            while let frame = try parser.next() {
                checkRoundTrip(frame)
                now += .seconds(Int(first >> 4))
                switch frame {
                case .request(let request): _ = server.receive(request, now: now) { "fuzz0000" }
                case .response(let response):
                    if case .send(let next) = client.receive(response, random: &random) { checkRoundTrip(.request(next)) }
                case .interleaved: _ = client.keepAlive(random: &random)
                }
            }
        } catch {
            break feeding
        }
    }

    let text = String(decoding: data.readableBytesView, as: UTF8.self)
    if let description = try? SessionDescription(parsing: text) {
        for media in description.media {
            _ = try? media.h264ParameterSets()
            _ = try? media.h265ParameterSets()
            _ = try? media.aacConfig()
            _ = description.controlURL(for: media, base: "rtsp://h/s")
        }
        _ = description.text
    }
    if let transports = try? RTSPTransport.parse(text) {
        for transport in transports {
            guard (try? RTSPTransport.parse(transport.description)) == [transport] else {
                fatalError("a Transport camflow accepted does not read back once written")
            }
        }
    }
    if let challenge = try? RTSPChallenge(parsing: text) {
        guard (try? RTSPChallenge(parsing: challenge.header)) != nil else { fatalError("a challenge written does not read back") }
        _ = challenge.authorization(username: "u", password: "p", method: .describe, uri: "rtsp://h/s", cnonce: "c")
    }
    if let authorization = try? DigestAuthorization(parsing: text) {
        guard (try? DigestAuthorization(parsing: authorization.header)) != nil else { fatalError("an authorization written does not read back") }
        _ = authorization.expectedResponse(password: "p", method: .describe)
    }
    _ = RTSPSessionHeader(parsing: text)
    _ = RTPInfo.parse(text)
}

private func checkRoundTrip(_ frame: RTSPFrame) {
    var again = RTSPParser(limits: RTSPParserLimits(startLineBytes: 4096, headerBytes: 65536, headerCount: 64, bodyBytes: 4096))
    switch frame {
    case .request(let request):
        again.append(request.bytes)
        guard case .request(let read)? = try? again.next(), read.method == request.method, read.uri == request.uri,
              read.cseq == request.cseq, read.body == request.body, read.headers.count == request.headers.count
        else { fatalError("a request camflow accepted does not read back once written") }
    case .response(let response):
        again.append(response.bytes)
        guard case .response(let read)? = try? again.next(), read.status == response.status, read.cseq == response.cseq,
              read.body == response.body, read.headers.count == response.headers.count
        else { fatalError("a response camflow accepted does not read back once written") }
    case .interleaved:
        break
    }
}

/// Deterministic, so a crash replays.
private struct FuzzRandom: RandomNumberGenerator {
    var state: UInt64 = 1
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
}
