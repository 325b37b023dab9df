#!/usr/bin/env python3
"""A hostile stand-in for a camera's WebSocket server, for camflow's tests.

    hostile_camera.py MODE      prints 'listening PORT', then serves 127.0.0.1

Modes:
  bad-accept    answers the upgrade with 101 and a wrong Sec-WebSocket-Accept,
                then streams bytes as fast as the client takes them; prints
                'closed after N bytes' when the client hangs up.
  unauthorized  answers every request with 401 and prints 'request PATH'.
  error-flood   completes the handshake, then sends 1000 text frames of
                'error:' with newlines and ANSI escapes (and a 1 MiB one),
                prints 'flood sent', then keeps the connection open.
It stops by itself after 60 s.
"""
import base64
import hashlib
import socket
import sys
import threading
import time

MODE = sys.argv[1]
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data.decode("latin-1")


def text_frame(payload):
    header = bytearray([0x81])
    if len(payload) < 126:
        header.append(len(payload))
    elif len(payload) < 65536:
        header.append(126)
        header += len(payload).to_bytes(2, "big")
    else:
        header.append(127)
        header += len(payload).to_bytes(8, "big")
    return bytes(header) + payload


def serve(conn):
    request = read_request(conn)
    if request is None:
        return
    first = request.split("\r\n", 1)[0]
    if MODE == "unauthorized":
        print("request " + first.split(" ")[1], flush=True)
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cam\"\r\nContent-Length: 0\r\n\r\n")
        return
    key = ""
    for line in request.split("\r\n"):
        if line.lower().startswith("sec-websocket-key:"):
            key = line.split(":", 1)[1].strip()
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    if MODE == "bad-accept":
        accept = base64.b64encode(b"not the right key at all").decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: " + accept + "\r\n\r\n").encode())
    if MODE == "bad-accept":
        sent = 0
        chunk = b"\x82\x7e\xff\xff" + b"\x00" * 65531
        try:
            while sent < 4 << 30:
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        print(f"closed after {sent} bytes", flush=True)
        return
    if MODE == "error-flood":
        forged = b"error: \x1b[31mred\x1b[0m\n2026-01-01T00:00:00 critical camflow: forged line"
        try:
            for index in range(1000):
                conn.sendall(text_frame(forged))
            conn.sendall(text_frame(b"error: " + b"x" * (1 << 20)))
            for index in range(5):
                conn.sendall(text_frame(b"error: distinct %d" % index))
            print("flood sent", flush=True)
            while conn.recv(4096):
                pass
        except OSError:
            pass


def main():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(1)
    print(f"listening {server.getsockname()[1]}", flush=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            continue
        threading.Thread(target=lambda c=conn: (serve(c), c.close()), daemon=True).start()


if __name__ == "__main__":
    main()
