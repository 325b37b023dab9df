import NIOCore
import NIOPosix
@testable import RTSPPlugin
import Testing

/// The client ports of `transport: udp`: consecutive from an even port, RTP
/// taken from the server's address and port only, an RTCP BYE heeded.
@Suite struct RTSPCameraUDPTests {
    func sender(port: Int = 0) async throws -> any Channel {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: port).get()
    }

    func send(_ bytes: [UInt8], from channel: any Channel, to port: Int) async throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes))).get()
    }

    @Test func onlyTheServersRTPIsTaken_andAByeIsHeeded() async throws {
        let ports = try await CameraUDPPorts.bind(tracks: 2, localHost: "127.0.0.1")
        defer { ports.close() }
        #expect(ports.firstPort % 2 == 0)
        let server = try await sender()
        let stranger = try await sender()
        defer {
            server.close(promise: nil)
            stranger.close(promise: nil)
        }
        // Before the RTSP connection says who the server is, nothing is taken.
        try await send([1], from: server, to: ports.firstPort)
        let deadline = ContinuousClock.now + .seconds(10)
        while ports.strays < 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        ports.setServer(host: "127.0.0.1")
        ports.setServerPort(server.localAddress?.port, track: 1)
        try await send([2], from: stranger, to: ports.firstPort + 2) // track 1: the wrong port
        try await send([3], from: server, to: ports.firstPort + 2)
        try await send([4], from: stranger, to: ports.firstPort) // track 0: no port named, the address is enough
        try await send([0x80, 203, 0, 1, 0, 0, 0, 1], from: server, to: ports.firstPort + 1) // RTCP BYE of track 0
        var got: [String] = []
        for await input in ports.stream {
            switch input {
            case .packet(let track, let bytes): got.append("\(track):\(bytes.readableBytesView.first ?? 0)")
            case .bye(let track): got.append("bye \(track)")
            case .play: break
            }
            if got.count == 3 { break }
        }
        // Each port is a socket of its own, read on its own event loop: what
        // arrives on different ports has no order between them.
        #expect(got.sorted() == ["0:4", "1:3", "bye 0"])
        #expect(ports.strays == 2, "the packet before the server was known, and the stranger's on track 1")
    }

    @Test func rtcpCompounds_areReadWithinTheirLengths() {
        let receiverReport: [UInt8] = [0x80, 201, 0, 1, 0, 0, 0, 1]
        let bye: [UInt8] = [0x81, 203, 0, 1, 0, 0, 0, 1]
        #expect(CameraMediaInput.isBye(ByteBuffer(bytes: receiverReport + bye)))
        #expect(!CameraMediaInput.isBye(ByteBuffer(bytes: receiverReport)))
        #expect(!CameraMediaInput.isBye(ByteBuffer(bytes: [0x80, 201, 0xFF, 0xFF] + bye)), "a length past the end stops the reading")
        #expect(!CameraMediaInput.isBye(ByteBuffer(bytes: [0x40, 203, 0, 0])), "version 1 is not RTCP")
        #expect(!CameraMediaInput.isBye(ByteBuffer()))
    }
}

/// Camera URLs: credentials taken out of what is printed, bad URLs refused with a reason.
@Suite struct RTSPCameraURLTests {
    @Test func credentialsInTheURL_areTakenOut() throws {
        let url = try CameraURL.parse("rtsp://admin:p%40ss%20word@192.168.2.19/11")
        #expect(url.host == "192.168.2.19" && url.port == 554)
        #expect(url.username == "admin" && url.password == "p@ss word")
        #expect(url.requestURL == "rtsp://192.168.2.19/11" && "\(url)" == "rtsp://192.168.2.19/11")
        let v6 = try CameraURL.parse("rtsp://[::1]:8554/cam?channel=1")
        #expect(v6.host == "::1" && v6.port == 8554 && v6.requestURL == "rtsp://[::1]:8554/cam?channel=1")
        let moved = try url.redirected(to: "rtsp://other:1/x")
        #expect(moved.password == "p@ss word" && moved.requestURL == "rtsp://other:1/x")
    }

    @Test(arguments: ["http://cam/x", "rtsp:///x", "rtsp://cam:70000/x", "not a url", "rtsp://"])
    func badURLs_areRefused(_ text: String) {
        #expect(throws: CameraURLError.self) { try CameraURL.parse(text) }
    }
}
