#!/usr/bin/env python3
"""A hostile RTSP server for camflow's rtsp-camera tests.

    hostile_rtsp_server.py MODE    prints 'listening PORT', then serves 127.0.0.1

Every accepted connection prints 'connection N'. Modes:
  redirect-loop  answers every request with 302 to a new path on itself
                 (prints 'request METHOD URI').
  trickle        answers the first request with a status line, then one
                 header byte every 100 ms, forever.
  endless-fu     a correct handshake (H.264 track, interleaved TCP), then an
                 FU-A start of an IDR frame and middle fragments of 1400
                 bytes, same timestamp, no end, as fast as the client reads;
                 prints 'streamed N MiB' every 16 MiB.
  keepalive      a correct handshake with a 4 s session timeout, then no
                 media; prints 'playing', then 'request METHOD' for every
                 later request, each answered 200.
  full-backlog   listens but never accepts, its accept queue full: a connect
                 to it hangs (the kernel drops the SYNs).
It stops by itself after 60 s.
"""
import socket
import sys
import threading
import time

MODE = sys.argv[1]
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1\r\na=control:track1\r\n"
)
connections = 0
lock = threading.Lock()


def say(line):
    with lock:
        print(line, flush=True)


def read_request(conn, pending):
    while b"\r\n\r\n" not in pending[0]:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        pending[0] += chunk
    head, _, rest = pending[0].partition(b"\r\n\r\n")
    pending[0] = rest
    lines = head.decode("latin-1").split("\r\n")
    method, uri = lines[0].split(" ")[:2]
    cseq = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("cseq:")), "0")
    return method, uri, cseq


def answer(conn, cseq, status="200 OK", headers=(), body=""):
    text = f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n"
    for header in headers:
        text += header + "\r\n"
    if body:
        text += f"Content-Length: {len(body)}\r\n"
    conn.sendall((text + "\r\n" + body).encode())


def rtp(seq, payload):
    header = bytes([0x80, 96, (seq >> 8) & 0xFF, seq & 0xFF, 0, 0, 0x10, 0, 0x12, 0x34, 0x56, 0x78])
    packet = header + payload
    return b"$\x00" + len(packet).to_bytes(2, "big") + packet


def serve(conn, port):
    pending = [b""]
    hop = 0
    playing = False
    while True:
        request = read_request(conn, pending)
        if request is None:
            return
        method, uri, cseq = request
        if MODE == "redirect-loop":
            say(f"request {method} {uri}")
            hop += 1
            answer(conn, cseq, "302 Moved Temporarily", [f"Location: rtsp://127.0.0.1:{port}/loop{hop}"])
        elif MODE == "trickle":
            conn.sendall(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nX-Slow: ".encode())
            while True:
                conn.sendall(b"a")
                time.sleep(0.1)
        elif MODE == "keepalive" and playing:
            say(f"request {method}")
            answer(conn, cseq, headers=["Session: 1234"])
        elif MODE in ("endless-fu", "keepalive"):
            if method == "OPTIONS":
                answer(conn, cseq, headers=["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"])
            elif method == "DESCRIBE":
                answer(conn, cseq, headers=["Content-Type: application/sdp", f"Content-Base: rtsp://127.0.0.1:{port}/"],
                       body=SDP)
            elif method == "SETUP":
                answer(conn, cseq, headers=["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", "Session: 1234;timeout=4"])
            elif method == "PLAY":
                answer(conn, cseq, headers=["Session: 1234"])
                if MODE == "keepalive":
                    playing = True
                    say("playing")
                    continue
                seq = 0
                conn.sendall(rtp(seq, bytes([0x7C, 0x85]) + bytes(1400)))  # FU-A start of an IDR
                sent = 0
                while True:
                    seq = (seq + 1) & 0xFFFF
                    conn.sendall(rtp(seq, bytes([0x7C, 0x05]) + bytes(1400)))  # middle, never the end
                    sent += 1418
                    if sent % (16 << 20) < 1418:
                        say(f"streamed {sent >> 20} MiB")
            else:
                answer(conn, cseq)


def handle(conn, port):
    try:
        serve(conn, port)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    global connections
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(0 if MODE == "full-backlog" else 16)
    port = server.getsockname()[1]
    threading.Timer(60, lambda: __import__("os")._exit(0)).start()
    if MODE == "full-backlog":
        fillers = []
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        time.sleep(0.3)
        say(f"listening {port}")
        time.sleep(60)
        return
    say(f"listening {port}")
    while True:
        conn, _ = server.accept()
        connections += 1
        say(f"connection {connections}")
        threading.Thread(target=handle, args=(conn, port), daemon=True).start()


if __name__ == "__main__":
    main()
