"""camflow_client.node: the exec node's framing, round trip and through camflow itself."""
import io
import json
import struct

from camflow_client.node import emit, packets


def framed(header, payload=b""):
    encoded = json.dumps(header).encode()
    return struct.pack(">I", len(encoded)) + encoded + struct.pack(">I", len(payload)) + payload


def test_packets_acknowledge_the_previous_one_and_emit_drops_the_ack_sequence():
    source = io.BytesIO(framed({"kind": "frame", "ack_sequence": 1}, b"ab") + framed({"kind": "init", "ack_sequence": 2}))
    out = io.BytesIO()
    seen = []
    for header, payload in packets(source):
        seen.append((header["kind"], payload))
        emit(header, payload, out) if False else None
    assert seen == [("frame", b"ab"), ("init", b"")]
    sink = io.BytesIO()
    emit({"kind": "frame", "ack_sequence": 9, "stream": "s"}, b"xyz", sink)
    size = struct.unpack(">I", sink.getvalue()[:4])[0]
    assert json.loads(sink.getvalue()[4:4 + size]) == {"kind": "frame", "stream": "s"}


def test_a_python_detector_runs_as_an_exec_node_and_publishes_back(tmp_path):
    """The detect example, in camflow's exec node: its events reach a subscriber."""
    import pathlib
    import subprocess
    import sys

    from camflow_client import Event, Subscriber
    from conftest import FIXTURES, ROOT, camflow_binary, free_port

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pipeline = tmp_path / "detect.yaml"
    pipeline.write_text(f"""
nodes:
  cam1: {{ type: file-replay, path: "{FIXTURES / 'h264-main-aac.mp4'}", realtime: true, loop: true }}
  parse: {{ type: mp4-parse, inputs: [cam1], frames: true, emit: [init, frame] }}
  detect: {{ type: exec, inputs: [parse], command: ["{sys.executable}", "{ROOT / 'clients/python/examples/detect_and_publish.py'}"] }}
  publish: {{ type: zmq-publish, inputs: [detect], endpoint: "{endpoint}" }}
""")
    run = subprocess.Popen([camflow_binary(), "run", str(pipeline), "--status-interval", "0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with Subscriber(endpoint, streams=["cam1"], kinds=["event"], idle_timeout=30) as subscriber:
            events = []
            for message in subscriber:
                if isinstance(message, Event) and message.name == "detection":
                    events.append(message)
                if len(events) == 3:
                    break
        assert len(events) == 3, run.stderr
        assert all(0 <= e.fields["brightness"] <= 255 and e.fields["score"] >= 0 for e in events)
    finally:
        run.kill()
        run.wait()


def test_a_pipe_that_ends_or_lies_gives_a_clear_error():
    import pytest

    for broken in [struct.pack(">I", 2) + b"{}",  # no payload length
                   struct.pack(">I", 9) + b"{}",  # shorter than it said
                   struct.pack(">I", 4) + b"[1]\n" + struct.pack(">I", 0),  # not an object
                   struct.pack(">I", 1 << 31)]:  # beyond any packet
        with pytest.raises((EOFError, ValueError)):
            list(packets(io.BytesIO(broken)))


def test_a_header_over_camflows_limit_or_nested_too_deep_is_a_client_error():
    import pytest

    from camflow_client import ClientError

    # A 2 MiB header is refused on its length, before it is read; a deep one is not a RecursionError.
    for broken in [struct.pack(">I", 2 << 20) + b"[" * (2 << 20) + struct.pack(">I", 0),
                   struct.pack(">I", 100_000) + b"[" * 100_000 + struct.pack(">I", 0),
                   struct.pack(">I", 2) + b"\xff\xfe" + struct.pack(">I", 0)]:
        with pytest.raises(ClientError):
            list(packets(io.BytesIO(broken)))


def test_an_ack_sequence_past_2_63_is_acknowledged_unsigned():
    import pytest

    from camflow_client import ClientError

    # camflow writes its unsigned count as the signed bit pattern and reads the ack back as digits.
    source = io.BytesIO(framed({"kind": "frame", "ack_sequence": -1}) + framed({"kind": "frame", "ack_sequence": -2}))
    out = io.BytesIO()
    assert len(list(packets(source, out))) == 2
    acks, at, data = [], 0, out.getvalue()
    while at < len(data):
        size = struct.unpack_from(">I", data, at)[0]
        acks.append(data[at + 4:at + 4 + size])
        at += 8 + size
    assert acks == [b'{"ack":18446744073709551615}', b'{"ack":18446744073709551614}']
    with pytest.raises(ClientError):
        list(packets(io.BytesIO(framed({"kind": "frame", "ack_sequence": "1"})), io.BytesIO()))


def test_emit_refuses_what_camflow_would_not_read():
    import pytest

    from camflow_client import ClientError

    for header, payload in [({"fields": {"x": float("nan")}}, b""), ({"fields": object()}, b""),
                            ({"note": "x" * (1 << 20)}, b"")]:
        sink = io.BytesIO()
        with pytest.raises(ClientError):
            emit(header, payload, sink)
        assert sink.getvalue() == b"", "nothing half-written"
