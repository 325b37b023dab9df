"""python -m camflow_client: tail, save and snapshot from a camflow publisher.

  python -m camflow_client tail tcp://127.0.0.1:5555 [--stream cam1] [--kinds stats event]
  python -m camflow_client save tcp://127.0.0.1:5555 --stream cam1 --out cam1.mp4 [--seconds 30]
  python -m camflow_client snapshot tcp://127.0.0.1:5555 --stream cam1 --out cam1.jpg [--width 640]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from .messages import KINDS, ClientError, Frame, Init, printable
from .mp4 import annex_b_to_length_prefixed, fragment, is_annex_b, parse_init
from .subscriber import Curve, Subscriber


def _subscriber(args, kinds=None) -> Subscriber:
    curve = Curve.from_keygen(args.curve_server_key, args.curve_secret_key_file) if args.curve_server_key else None
    streams = [args.stream] if args.stream else None
    return Subscriber(args.endpoint, streams=streams, kinds=kinds, curve=curve, idle_timeout=args.idle_timeout)


def tail(args) -> int:
    seen = 0
    with _subscriber(args, args.kinds) as subscriber:
        try:
            for message in subscriber:
                shown = {k: v for k, v in message.header.items() if k not in ("stream", "kind", "sequence")}
                note = f" LOST {message.gap}" if message.gap else " RESTARTED" if message.restarted else ""
                # json.dumps escapes control characters; the topic is escaped too: no terminal escapes from the wire.
                print(f"{time.strftime('%H:%M:%S')} {printable(message.topic)} #{message.sequence} {len(message.payload)} B"
                      f"{note} {json.dumps(shown, separators=(',', ':'))}", flush=True)
                seen += 1
                if args.count and seen >= args.count:
                    break
        except KeyboardInterrupt:
            pass
    return 0


def save(args) -> int:
    """Frames to a fragmented MP4: the stream's own init segment, then a fragment per frame, from a keyframe."""
    written = video_frames = 0
    sequence = 1
    init = None
    waiting = True
    # Decode times continue across a publisher's restart or a looped file: each
    # track's times are shifted so they never step back.
    shift: dict[int, int] = {}
    next_dts: dict[int, int] = {}
    first_dts = None
    origin = None
    with _subscriber(args, ["init", "frame"]) as subscriber, open(args.out, "wb") as out:
        try:
            for message in subscriber:
                if isinstance(message, Init):
                    if init is not None and message.payload != init.data:
                        print("the stream's init segment changed (another picture size?): stopping", file=sys.stderr)
                        break
                    if init is None:
                        try:
                            init = parse_init(message.payload)
                        except ValueError as error:
                            print(f"the stream's init segment does not parse: {error}", file=sys.stderr)
                            return 1
                        if init.video is None:
                            print("the stream has no video track", file=sys.stderr)
                            return 1
                        out.write(init.data)
                    continue
                if not isinstance(message, Frame) or init is None or message.dts is None:
                    continue
                # Audio and video share the frame topic: a loss anywhere may be a lost video frame.
                if message.gap or message.restarted or message.discontinuity:
                    waiting = True  # what follows a loss decodes from the next keyframe
                track = init.track(message.track) if message.track is not None else init.video
                if track is None:
                    continue  # a track the init segment does not have
                if track.is_video:
                    if waiting and not message.keyframe:
                        continue
                    waiting = False
                elif waiting:
                    continue
                data = message.payload
                if track.is_video and is_annex_b(data):
                    if track.nal_length_size not in (1, 2, 4):
                        continue
                    try:
                        data = annex_b_to_length_prefixed(data, track.nal_length_size)
                    except ClientError:
                        continue  # a NAL unit longer than the length prefix can say, or too many of them
                duration = message.duration or 0
                offset = (message.pts - message.dts) if message.pts is not None else 0
                if not 0 <= duration < 1 << 32 or not -(1 << 31) <= offset < 1 << 31:
                    continue  # a frame an MP4 fragment cannot hold
                # The file starts at zero: every track is moved by the first video frame's time.
                if origin is None:
                    origin = message.dts / (message.timescale or track.timescale or 1)
                if track.track_id not in shift:
                    shift[track.track_id] = -round(origin * (track.timescale or message.timescale or 1))
                dts = message.dts + shift[track.track_id]
                expected = next_dts.get(track.track_id)
                if expected is not None and dts < expected:
                    shift[track.track_id] += expected - dts
                    dts = expected
                if dts < 0:
                    continue  # audio from before the first video frame
                try:
                    written_fragment = fragment(sequence, track.track_id, dts,
                                                [(data, duration, offset, bool(message.keyframe))])
                except ClientError:
                    continue  # a frame the boxes cannot hold
                next_dts[track.track_id] = dts + duration
                if track.is_video:
                    video_frames += 1
                out.write(written_fragment)
                sequence += 1
                written += 1
                if track.is_video:
                    first_dts = dts if first_dts is None else first_dts
                    seconds = (dts + duration - first_dts) / (message.timescale or track.timescale or 1)
                    if (args.seconds and seconds >= args.seconds) or (args.frames and video_frames >= args.frames):
                        break
        except KeyboardInterrupt:
            pass
    print(f"wrote {args.out}: {video_frames} video frames, {written} frames in all", file=sys.stderr)
    return 0 if video_frames else 1


def snapshot(args) -> int:
    from .decode import encode_jpeg, scale  # noqa: PLC0415
    limits = {"max_width": args.max_width, "max_height": args.max_height, "max_pixels": args.max_pixels}
    with _subscriber(args, ["init", "frame"]) as subscriber:
        for frame in subscriber.frames(args.stream, keyframes_only=True, **limits):
            try:
                if args.width:
                    frame = scale(frame, args.width, **limits)
                jpeg = encode_jpeg(frame)
            except ClientError as error:
                print(f"the {frame.width}x{frame.height} keyframe at {frame.pts:.3f} s: {printable(str(error), 300)}",
                      file=sys.stderr)
                return 1
            with open(args.out, "wb") as out:
                out.write(jpeg)
            print(f"wrote {printable(args.out)}: {frame.width}x{frame.height}, keyframe at {frame.pts:.3f} s",
                  file=sys.stderr)
            return 0
    print("no keyframe arrived", file=sys.stderr)
    return 1


def _width(text: str) -> int:
    # As camflow's own snapshots: 16 to 7680 pixels wide.
    value = int(text)
    if not 16 <= value <= 7680:
        raise argparse.ArgumentTypeError(f"{value} is not from 16 to 7680")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m camflow_client", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("tail", "one line per message"), ("save", "remux a stream to MP4 without re-encoding"),
                           ("snapshot", "the next keyframe as JPEG")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("endpoint", help="publisher or broker, such as tcp://127.0.0.1:5555")
        command.add_argument("--stream", required=name != "tail", help="stream name (the topic's first part)")
        command.add_argument("--idle-timeout", type=float, default=None if name == "tail" else 30,
                             help="stop after this many seconds without a message")
        command.add_argument("--curve-server-key", help="the publisher's public key (Z85), for CURVE")
        command.add_argument("--curve-secret-key-file", help="this subscriber's key file from camflow keygen")
        if name == "tail":
            command.add_argument("--kinds", nargs="*", choices=KINDS, help="only these kinds")
            command.add_argument("--count", type=int, default=0, help="stop after this many messages")
        else:
            command.add_argument("--out", required=True, help="the file to write")
        if name == "save":
            command.add_argument("--seconds", type=float, default=0, help="stop after this much video")
            command.add_argument("--frames", type=int, default=0, help="stop after this many video frames")
        if name == "snapshot":
            from .decode import MAX_HEIGHT, MAX_PIXELS, MAX_WIDTH  # noqa: PLC0415 (no PyAV import)
            command.add_argument("--width", type=_width, default=0, help="scale to this width (16 to 7680)")
            command.add_argument("--max-width", type=int, default=MAX_WIDTH,
                                 help=f"refuse wider pictures, decoded or scaled (default {MAX_WIDTH})")
            command.add_argument("--max-height", type=int, default=MAX_HEIGHT,
                                 help=f"refuse higher pictures, decoded or scaled (default {MAX_HEIGHT})")
            command.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                                 help=f"refuse pictures of more pixels, decoded or scaled (default {MAX_PIXELS})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if bool(args.curve_server_key) != bool(args.curve_secret_key_file):
        parser.error("--curve-server-key and --curve-secret-key-file go together (without both, nothing is encrypted)")
    return {"tail": tail, "save": save, "snapshot": snapshot}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
