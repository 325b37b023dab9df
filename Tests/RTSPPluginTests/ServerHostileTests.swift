import CamflowTesting
import Foundation
import Testing

/// The `rtsp` node against clients that do not behave: wrong or missing
/// credentials, half requests, too many connections, silence, oversized
/// requests and interleaved junk. Raw sockets from a Python script, so the
/// bytes are exactly these.
@Suite struct ServerHostileTests {
    static let script = #"""
        import hashlib, json, os, socket, sys, time
        port, mode = int(sys.argv[1]), sys.argv[2]
        url = "rtsp://127.0.0.1:%d/cam1" % port
        def connect():
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            return s
        def pair():
            """Two UDP sockets on consecutive ports from an even one: a client's RTP and RTCP."""
            while True:
                a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", 0))
                port0 = a.getsockname()[1]
                if port0 % 2: a.close(); continue
                b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try: b.bind(("127.0.0.1", port0 + 1))
                except OSError: a.close(); b.close(); continue
                return a, b, port0
        def request(s, method, uri, cseq, extra=""):
            s.sendall(("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n" % (method, uri, cseq, extra)).encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk: return data.decode(errors="replace")
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"): length = int(line.split(b":")[1])
            while len(rest) < length: rest += s.recv(65536)
            return head.decode(errors="replace")
        def closed_after(s):
            start = time.monotonic()
            try:
                while s.recv(65536): pass
            except socket.timeout:
                return None
            except ConnectionResetError:
                pass
            return time.monotonic() - start
        out = {}
        if mode == "auth":
            s = connect()
            head = request(s, "DESCRIBE", url, 1)
            out["unauthenticated"] = head.split("\r\n")[0]
            challenges = [l for l in head.split("\r\n") if l.lower().startswith("www-authenticate:")]
            out["challenges"] = [c.split(":", 1)[1].strip().split(" ")[0] for c in challenges]
            digest = [c for c in challenges if "Digest" in c][0]
            fields = dict(p.strip().split("=", 1) for p in digest.split("Digest", 1)[1].split(","))
            realm, nonce = fields["realm"].strip('"'), fields["nonce"].strip('"')
            def answer(password):
                ha1 = hashlib.md5(("viewer:%s:%s" % (realm, password)).encode()).hexdigest()
                ha2 = hashlib.md5(("DESCRIBE:%s" % url).encode()).hexdigest()
                response = hashlib.md5(("%s:%s:00000001:abcdef:auth:%s" % (ha1, nonce, ha2)).encode()).hexdigest()
                return ('Authorization: Digest username="viewer", realm="%s", nonce="%s", uri="%s", qop=auth, '
                        'nc=00000001, cnonce="abcdef", response="%s"\r\n' % (realm, nonce, url, response))
            out["digestWrong"] = request(s, "DESCRIBE", url, 2, answer("wrong")).split("\r\n")[0]
            out["digestRight"] = request(s, "DESCRIBE", url, 3, answer("s3cret")).split("\r\n")[0]
            import base64
            basic = base64.b64encode(b"viewer:s3cret").decode()
            out["basicRight"] = request(s, "DESCRIBE", url, 4, "Authorization: Basic %s\r\n" % basic).split("\r\n")[0]
            bad = base64.b64encode(b"viewer:s3cres").decode()
            out["basicWrong"] = request(s, "DESCRIBE", url, 5, "Authorization: Basic %s\r\n" % bad).split("\r\n")[0]
            out["options"] = request(s, "OPTIONS", url, 6).split("\r\n")[0]
        elif mode == "guess":
            import base64
            s = connect()
            bad = [request(s, "DESCRIBE", url, i, "Authorization: Basic %s\r\n" % base64.b64encode(b"viewer:guess%d" % i).decode()).split("\r\n")[0] for i in range(10)]
            out["guesses"] = sorted(set(bad))
            s = connect()
            right = base64.b64encode(b"viewer:s3cret").decode()
            out["rightAfterGuesses"] = request(s, "DESCRIBE", url, 11, "Authorization: Basic %s\r\n" % right).split("\r\n")[0]
        elif mode == "slowloris":
            s = connect()
            s.sendall(b"OPTIONS " + url.encode() + b" RTSP/1.0\r\nCSeq: 1\r\n")
            out["halfRequestClosedAfter"] = closed_after(s)
            s = connect()
            out["silentClosedAfter"] = closed_after(s)
        elif mode == "caps":
            held = [connect() for _ in range(2)]
            out["held"] = [request(s, "OPTIONS", url, 1).split("\r\n")[0] for s in held]
            extra = connect()
            out["thirdClosedAfter"] = closed_after(extra)
            out["heldStillAnswer"] = request(held[0], "OPTIONS", url, 2).split("\r\n")[0]
        elif mode == "session":
            s = connect()
            out["setup"] = request(s, "SETUP", url + "/trackID=0", 1, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n").split("\r\n")[0]
            out["silentSessionClosedAfter"] = closed_after(s)
        elif mode == "junk":
            s = connect()
            s.sendall(b"$\x00\x00\x08" + b"\x80" * 8 + b"$\x01\xff\xff" + b"\x00" * 65535)
            try:
                out["afterInterleaved"] = request(s, "OPTIONS", url, 1).split("\r\n")[0]
            except (BrokenPipeError, ConnectionResetError):
                out["afterInterleaved"] = ""
            s = connect()
            setups = [request(s, "SETUP", url + "/trackID=0", 2 + i, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n").split("\r\n")[0] for i in range(300)]
            out["setups"] = sorted(set(setups))
            out["guessedSession"] = request(s, "PLAY", url, 400, "Session: 0123456789ABCDEF\r\n").split("\r\n")[0]
            out["unknownStream"] = request(s, "DESCRIBE", "rtsp://127.0.0.1:%d/nope" % port, 401).split("\r\n")[0]
            s2 = connect()
            s2.sendall(("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n" % url).encode())
            out["hugeBody"] = s2.recv(4096).decode(errors="replace").split("\r\n")[0]
            out["hugeBodyClosedAfter"] = closed_after(s2)
        elif mode == "pipelined":
            s = connect()
            s.settimeout(3)
            line = ("OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % url).encode()
            total, sent = 400000, 0
            try:
                while sent < total:
                    s.sendall(line * 1000)
                    sent += 1000
            except socket.timeout:
                pass
            out["sentRequests"] = sent
            out["totalRequests"] = total
            fresh = connect()
            out["othersServed"] = request(fresh, "OPTIONS", url, 1).split("\r\n")[0]
        elif mode == "udp":
            rtp, rtcp, cport = pair()
            s = connect()
            head = request(s, "SETUP", url + "/trackID=0", 1, "Transport: RTP/AVP;unicast;client_port=%d-%d\r\n" % (cport, cport + 1))
            out["setup"] = head.split("\r\n")[0]
            transport = [l for l in head.split("\r\n") if l.startswith("Transport:")][0]
            sport = int(transport.split("server_port=")[1].split("-")[0].split(";")[0])
            session = [l.split(":", 1)[1].strip().split(";")[0] for l in head.split("\r\n") if l.startswith("Session:")][0]
            out["play"] = request(s, "PLAY", url, 2, "Session: %s\r\n" % session).split("\r\n")[0]
            # NAT openers and garbage to both server ports: never read by the server.
            for i in range(200):
                rtp.sendto(b"\x80" * 12 + os.urandom(200), ("127.0.0.1", sport))
                rtcp.sendto(os.urandom(64), ("127.0.0.1", sport + 1))
            rtp.settimeout(5); rtcp.settimeout(5)
            arrivals, total, start = [], 0, None
            while total < 40000:
                data = rtp.recv(65536)
                now = time.monotonic()
                if start is None: start = now
                total += len(data)
                arrivals.append(now)
            out["first40KBSeconds"] = arrivals[-1] - start
            report = rtcp.recv(2048)
            out["rtcpType"] = report[1]
            out["rtcpNTPSeconds"] = int.from_bytes(report[8:12], "big") - 2208988800
            out["now"] = time.time()
            out["optionsAfter"] = request(s, "OPTIONS", url, 3).split("\r\n")[0]
        elif mode == "rtcp":
            s = connect()
            head = request(s, "SETUP", url + "/trackID=0", 1, "Transport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n")
            session = [l.split(":", 1)[1].strip().split(";")[0] for l in head.split("\r\n") if l.startswith("Session:")][0]
            out["play"] = request(s, "PLAY", url, 2, "Session: %s\r\n" % session).split("\r\n")[0]
            buffer, channels = b"", set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and ("report" not in out or 4 not in channels):
                buffer += s.recv(65536)
                while len(buffer) >= 4 and buffer[0:1] == b"$":
                    length = int.from_bytes(buffer[2:4], "big")
                    if len(buffer) < 4 + length: break
                    channel, payload, buffer = buffer[1], buffer[4:4 + length], buffer[4 + length:]
                    channels.add(channel)
                    if channel == 5 and payload[1] == 200:
                        out["report"] = {"ntp": int.from_bytes(payload[8:12], "big") - 2208988800, "now": time.time()}
            out["channels"] = sorted(channels)
        elif mode == "dollar":
            import base64, select
            auth = "Authorization: Basic %s\r\n" % base64.b64encode(b"viewer:s3cret").decode()
            def hold(s, frame, every, seconds):
                # Sends `frame` every `every` s, reads (and drops) whatever comes; seconds until closed, None if open.
                s.setblocking(False)
                start = time.monotonic(); next_send = start
                while time.monotonic() - start < seconds:
                    now = time.monotonic()
                    if now >= next_send:
                        try: s.sendall(frame)
                        except (BrokenPipeError, ConnectionResetError): return now - start
                        next_send += every
                    ready, _, _ = select.select([s], [], [], max(0.0, min(next_send, start + seconds) - time.monotonic()))
                    if ready:
                        try: data = s.recv(1 << 20)
                        except ConnectionResetError: return time.monotonic() - start
                        except BlockingIOError: continue
                        if not data: return time.monotonic() - start
                return None
            def playing(channels):
                s = connect()
                head = request(s, "SETUP", url + "/trackID=0", 1, auth + "Transport: RTP/AVP/TCP;unicast;interleaved=%s\r\n" % channels)
                session = [l.split(":", 1)[1].strip().split(";")[0] for l in head.split("\r\n") if l.startswith("Session:")][0]
                out.setdefault("plays", []).append(request(s, "PLAY", url, 2, auth + "Session: %s\r\n" % session).split("\r\n")[0])
                return s
            tiny = b"$\x00\x00\x01x"
            # No request at all: the first frame ends it (the header timeout is 1 s, the frames come every 2 s).
            out["silentWithFramesClosedAfter"] = hold(connect(), tiny, 2, 6)
            # Asked without credentials (401), then a frame.
            s = connect()
            out["unauthenticated"] = request(s, "OPTIONS", url, 1).split("\r\n")[0] + "|" + request(s, "DESCRIBE", url, 2).split("\r\n")[0]
            out["unauthenticatedClosedAfter"] = hold(s, tiny, 2, 6)
            # Logged in and set up, not playing.
            s = connect()
            out["setupOnly"] = request(s, "SETUP", url + "/trackID=0", 1, auth + "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n").split("\r\n")[0]
            out["setupOnlyClosedAfter"] = hold(s, tiny, 2, 6)
            # Set up, not playing, receiver reports on its RTCP channel (live555 does): dropped, no keep-alive.
            rr = b"$\x01\x00\x08" + bytes([0x80, 201, 0, 1]) + b"\x00" * 4
            s = connect()
            request(s, "SETUP", url + "/trackID=0", 1, auth + "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
            out["setupReportsClosedAfter"] = hold(s, rr, 0.5, 8)
            # Playing (session timeout 2 s): receiver reports on the RTCP channel keep it, frames elsewhere do not.
            out["reportsKeepItFor"] = 6 if hold(playing("0-1"), rr, 0.5, 6) is None else "closed"
            out["otherChannelClosedAfter"] = hold(playing("0-1"), b"$\x07\x00\x08" + b"\x00" * 8, 0.5, 8)
            # A flood of 64 KiB frames from a playing client ends it long before 64 MiB went through.
            s = playing("0-1")
            s.settimeout(10)
            big, sent, flood_start = b"$\x01\xff\xff" + b"\x00" * 65535, 0, time.monotonic()
            try:
                while sent < 1024 and time.monotonic() - flood_start < 10:
                    s.sendall(big); sent += 1
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
            out["floodFramesSent"] = sent
        elif mode == "udpfull":
            udp = "RTP/AVP;unicast;client_port=%d-%d"
            sockets = [pair() for _ in range(3)]
            first = connect()
            head = request(first, "SETUP", url + "/trackID=0", 1, "Transport: %s\r\n" % (udp % (sockets[0][2], sockets[0][2] + 1)))
            out["first"] = head.split("\r\n")[0]
            out["firstTransport"] = [l for l in head.split("\r\n") if l.startswith("Transport:")]
            both = connect()
            head = request(both, "SETUP", url + "/trackID=0", 1, "Transport: %s,RTP/AVP/TCP;unicast;interleaved=0-1\r\n" % (udp % (sockets[1][2], sockets[1][2] + 1)))
            out["both"] = head.split("\r\n")[0]
            out["bothTransport"] = [l for l in head.split("\r\n") if l.startswith("Transport:")]
            only = connect()
            out["udpOnly"] = request(only, "SETUP", url + "/trackID=0", 1, "Transport: %s\r\n" % (udp % (sockets[2][2], sockets[2][2] + 1))).split("\r\n")[0]
            # ffprobe with its default transports (UDP first, TCP after a 461) while the first client holds the pair.
            import subprocess
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url],
                                   capture_output=True, text=True, timeout=30)
            out["ffprobe"] = [probe.returncode, probe.stdout.strip(), probe.stderr.strip()]
        print(json.dumps(out))
        """#

    static func run(_ mode: String, port: Int) async throws -> [String: Any] {
        let result = try await python(script, ["\(port)", mode])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        return try #require(object as? [String: Any], "\(result.stdout)\n\(result.stderr)")
    }

    @Test func credentialsAreRequiredAndCheckedBothWays() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4", options: "username: viewer, password: s3cret")
        defer { server.stop() }
        let url = try await server.waitUntilServing()
        let out = try await Self.run("auth", port: server.port)
        #expect(out["unauthenticated"] as? String == "RTSP/1.0 401 Unauthorized")
        #expect(out["challenges"] as? [String] == ["Digest", "Basic"])
        #expect(out["digestWrong"] as? String == "RTSP/1.0 401 Unauthorized")
        #expect(out["digestRight"] as? String == "RTSP/1.0 200 OK")
        #expect(out["basicRight"] as? String == "RTSP/1.0 200 OK")
        #expect(out["basicWrong"] as? String == "RTSP/1.0 401 Unauthorized")
        #expect(out["options"] as? String == "RTSP/1.0 200 OK")
        // ffprobe with the user in the URL (it answers the Digest challenge), and with a wrong password.
        let right = try await probe(url.replacingOccurrences(of: "rtsp://", with: "rtsp://viewer:s3cret@"), transport: "tcp")
        #expect(right.status == 0 && right.streams == ["hevc,320,240,25/1"], "\(right.stderr)")
        let wrong = try await probe(url.replacingOccurrences(of: "rtsp://", with: "rtsp://viewer:nope@"), transport: "tcp")
        #expect(wrong.status != 0 && wrong.stderr.contains("401"), "\(wrong.stderr)")
        #expect(!server.stderr.contains("s3cret"), "the password is never logged")
    }

    @Test func halfRequestsAndSilentConnectionsAreClosedAtTheHeaderTimeout() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4", options: "header-timeout: 1s")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("slowloris", port: server.port)
        let half = try #require(out["halfRequestClosedAfter"] as? Double, "still open after 20 s: \(out)")
        let silent = try #require(out["silentClosedAfter"] as? Double, "still open after 20 s: \(out)")
        #expect(half >= 0.8 && half < 5)
        #expect(silent >= 0.8 && silent < 5)
    }

    @Test func connectionsOverThePerClientCapAreClosedAtOnce() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4", options: "max-connections-per-client: 2")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("caps", port: server.port)
        #expect(out["held"] as? [String] == ["RTSP/1.0 200 OK", "RTSP/1.0 200 OK"])
        let third = try #require(out["thirdClosedAfter"] as? Double, "\(out)")
        #expect(third < 1)
        #expect(out["heldStillAnswer"] as? String == "RTSP/1.0 200 OK")
    }

    @Test func aSilentSessionEndsAtTheSessionTimeout() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4", options: "session-timeout: 2s")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("session", port: server.port)
        #expect(out["setup"] as? String == "RTSP/1.0 200 OK")
        let after = try #require(out["silentSessionClosedAfter"] as? Double, "\(out)")
        #expect(after >= 1.5 && after < 6)
    }

    @Test func junkFromClientsIsBoundedAndRefused() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("junk", port: server.port)
        #expect(out["afterInterleaved"] as? String == "", "interleaved data before PLAY closes the connection unanswered")
        #expect(out["setups"] as? [String] == ["RTSP/1.0 200 OK"])
        #expect(out["guessedSession"] as? String == "RTSP/1.0 454 Session Not Found")
        #expect(out["unknownStream"] as? String == "RTSP/1.0 404 Not Found")
        #expect((out["hugeBody"] as? String)?.hasPrefix("RTSP/1.0 4") == true, "\(out)")
        #expect(out["hugeBodyClosedAfter"] is Double)
    }

    @Test func interleavedFramesKeepOnlyAPlayingSessionAlive() async throws {
        let server = try RTSPServerProcess(fixture: "h265.mp4",
                                           options: "username: viewer, password: s3cret, header-timeout: 1s, session-timeout: 2s")
        defer { server.stop() }
        _ = try await server.waitUntilServing()
        let out = try await Self.run("dollar", port: server.port)
        // Before PLAY, a `$` frame closes the connection at once, with or without a request or a login.
        let silent = try #require(out["silentWithFramesClosedAfter"] as? Double, "still open after 6 s: \(out)")
        #expect(silent < 0.8, "\(out)")
        #expect(out["unauthenticated"] as? String == "RTSP/1.0 200 OK|RTSP/1.0 401 Unauthorized")
        let unauthenticated = try #require(out["unauthenticatedClosedAfter"] as? Double, "still open after 6 s: \(out)")
        #expect(unauthenticated < 0.8, "\(out)")
        #expect(out["setupOnly"] as? String == "RTSP/1.0 200 OK")
        let setupOnly = try #require(out["setupOnlyClosedAfter"] as? Double, "still open after 6 s: \(out)")
        #expect(setupOnly < 0.8, "\(out)")
        let setupReports = try #require(out["setupReportsClosedAfter"] as? Double, "still open after 8 s: \(out)")
        #expect(setupReports >= 1.5 && setupReports < 6, "closed by the session timeout: \(out)")
        // Playing: RTCP on the session's channel refreshes it; bytes on another channel are no sign of life.
        #expect(out["plays"] as? [String] == Array(repeating: "RTSP/1.0 200 OK", count: 3), "\(out)")
        #expect(out["reportsKeepItFor"] as? Int == 6, "\(out)")
        let other = try #require(out["otherChannelClosedAfter"] as? Double, "still open after 8 s: \(out)")
        #expect(other >= 1.5 && other < 6, "\(out)")
        // A flood is closed after its burst (4 MiB = 64 frames), not read at line rate.
        let flood = try #require(out["floodFramesSent"] as? Int, "\(out)")
        #expect(flood < 512, "\(out)")
        #expect(server.process.isRunning)
    }
}
