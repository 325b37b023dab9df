#!/usr/bin/python3
"""An independent RTSP server for camflow's tests and benchmarks: GStreamer's
GstRtspServer serving an MP4 file without re-encoding.

    /usr/bin/python3 gst_rtsp_server.py --port P --file F.mp4 [--path /stream]
        [--user U --password PW [--auth digest|basic]] [--loop]
        [--protocols tcp|udp|both]

Prints one line `ready rtsp://127.0.0.1:P/stream` on stdout once it listens
(--port 0 picks a free port; the line carries the real one), then serves until
SIGTERM or SIGINT, on which it exits with status 0.

The file's H.264 or H.265 video goes out as it is in the file (qtdemux, parse,
rtph264pay / rtph265pay pt=96 config-interval=-1, parameter sets in band before
every keyframe too), its AAC audio if it has some (aacparse, rtpmp4gpay pt=97).
The media factory is shared: every client sees the same stream. With --loop the
file plays again from its start at its end (segment seeks: the running time and
the RTP timestamps continue), otherwise the stream ends after the file.
It uses /usr/bin/python3 because the GStreamer bindings (python3-gi) are
installed for the system's Python.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstPbutils", "1.0")
from gi.repository import GLib, Gst, GstPbutils, GstRtsp, GstRtspServer  # noqa: E402


def probe(path):
    """The file's video codec ('h264' or 'h265') and whether it has AAC audio."""
    discoverer = GstPbutils.Discoverer.new(10 * Gst.SECOND)
    info = discoverer.discover_uri(Gst.filename_to_uri(path))
    video = None
    audio = False
    for stream in info.get_stream_list():
        caps = stream.get_caps()
        if caps is None or caps.get_size() == 0:
            continue
        name = caps.get_structure(0).get_name()
        if name == "video/x-h264":
            video = video or "h264"
        elif name == "video/x-h265":
            video = video or "h265"
        elif name == "audio/mpeg":
            audio = True
    if video is None:
        raise SystemExit(f"{path}: no H.264 or H.265 video track")
    return video, audio


def launch_line(path, video, audio):
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    parts = [
        f'filesrc location="{location}" ! qtdemux name=demux',
        f"demux.video_0 ! queue ! {video}parse ! "
        f"rtp{video}pay name=pay0 pt=96 config-interval=-1",
    ]
    if audio:
        parts.append("demux.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97")
    return "( " + " ".join(parts) + " )"


def looping_media_type():
    """A media whose pipeline seeks back to the start at the end of the file.
    Defined after Gst.init: GObject cannot register the subclass's signals
    before GStreamer's types exist."""

    class LoopingMedia(GstRtspServer.RTSPMedia):
        """A media whose pipeline seeks back to the start at the end of the file."""

        def do_prepared(self):
            # A segment seek makes the pipeline post SEGMENT_DONE instead of EOS.
            self.get_element().seek_simple(
                Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT, 0)

        def do_handle_message(self, message):
            if message.type == Gst.MessageType.SEGMENT_DONE:
                # Not flushing: the segment base accumulates, so running time and
                # the payloaders' timestamps continue across the loop.
                self.get_element().seek_simple(Gst.Format.TIME, Gst.SeekFlags.SEGMENT, 0)
                return True
            return GstRtspServer.RTSPMedia.do_handle_message(self, message)

    return LoopingMedia


def main():
    # A parent may have started this with the signals blocked (a thread's
    # mask is inherited): they must reach this process.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    # Until the main loop runs, a SIGTERM ends the script at once, still cleanly.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--file", required=True)
    parser.add_argument("--path", default="/stream")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--auth", choices=["basic", "digest"], default="digest")
    parser.add_argument("--loop", action="store_true")
    parser.add_argument("--protocols", choices=["tcp", "udp", "both"], default="both")
    args = parser.parse_args()
    if not args.path.startswith("/"):
        args.path = "/" + args.path
    if (args.user is None) != (args.password is None):
        raise SystemExit("--user and --password go together")

    Gst.init(None)
    video, audio = probe(args.file)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.file, video, audio))
    factory.set_shared(True)
    if args.loop:
        factory.set_media_gtype(looping_media_type())
    protocols = {
        "tcp": GstRtsp.RTSPLowerTrans.TCP,
        "udp": GstRtsp.RTSPLowerTrans.UDP,
        "both": GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP,
    }[args.protocols]
    factory.set_protocols(protocols)

    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        if args.auth == "basic":
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        else:
            auth.add_digest(args.user, args.password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        for permission in ("media.factory.access", "media.factory.construct"):
            permissions.add_permission_for_role("user", permission, True)
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, lambda *_: loop.quit() or False)

    print(f"ready rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
