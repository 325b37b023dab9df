"""Frames to pictures with PyAV (``pip install camflow-client[decode]``)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .messages import Frame
from .mp4 import InitSegment, Track, is_annex_b


def _av():
    try:
        import av  # noqa: PLC0415
    except ImportError:
        raise ImportError("decoding frames needs PyAV and numpy: pip install 'camflow-client[decode]'") from None
    return av


# 8192 x 8192: beyond any camera, and a bound on what one picture costs in memory.
MAX_PIXELS = 8192 * 8192


@dataclass
class DecodedFrame:
    """One decoded picture."""

    stream: str
    # A numpy array, height x width x 3 for bgr24 (what OpenCV expects).
    image: Any
    # Presentation time in seconds, on the camera's clock.
    pts: float
    # When the frame's bytes reached this process (time.time()).
    received_at: float
    keyframe: bool
    width: int
    height: int
    sequence: int


class VideoDecoder:
    """Decodes one stream's video frames: from a keyframe on, and again from
    the next keyframe after a gap, a restart or data the decoder rejects,
    never raising on bad input."""

    def __init__(self, init: InitSegment, image_format: str = "bgr24", keyframes_only: bool = False):
        video = init.video
        if video is None or video.codec_name not in ("h264", "hevc"):
            raise ValueError("the stream has no H.264 or H.265 video track")
        if video.width * video.height > MAX_PIXELS:
            raise ValueError(f"a {video.width}x{video.height} picture is larger than this client decodes")
        self.track: Track = video
        self.image_format = image_format
        self.keyframes_only = keyframes_only
        self._context = None
        self._waiting = True
        self._pending: dict[int, Frame] = {}
        self.rejected = 0

    def reset(self) -> None:
        """Forget what is buffered and wait for the next keyframe."""
        self._waiting = True
        self._pending.clear()
        if self._context is not None:
            self._context.flush_buffers()

    def flush(self) -> list[DecodedFrame]:
        """The pictures the decoder still holds (it delays a few for B-frames): at the end of a stream."""
        if self._context is None or self._waiting:
            return []
        av = _av()
        try:
            pictures = self._context.decode(None)
        except av.error.FFmpegError:
            pictures = []
        self._context.flush_buffers()
        self._waiting = True
        return self._pictures(pictures, None)

    def _open(self, annex_b: bool):
        av = _av()
        context = av.CodecContext.create(self.track.codec_name, "r")
        if not annex_b and self.track.config:
            context.extradata = self.track.config  # length-prefixed frames: parameter sets from the init segment
        return context

    def decode(self, message: Frame) -> list[DecodedFrame]:
        if not message.keyframe and (self._waiting or self.keyframes_only):
            return []
        av = _av()
        if self._context is None:
            self._context = self._open(is_annex_b(message.payload))
        self._waiting = False
        packet = av.Packet(message.payload)
        timescale = message.timescale or self.track.timescale or 90000
        packet.time_base = Fraction(1, timescale)
        if message.pts is not None:
            packet.pts = message.pts
            self._pending[message.pts] = message
        if message.dts is not None:
            packet.dts = message.dts
        try:
            pictures = self._context.decode(packet)
            if self.keyframes_only:
                # One keyframe decodes alone: drain it, then make the decoder ready for the next.
                pictures = pictures or self._context.decode(None)
                self._context.flush_buffers()
        except av.error.FFmpegError:
            self.rejected += 1
            self.reset()
            return []
        self._timescale = timescale
        out = self._pictures(pictures, message)
        # Frames the decoder dropped never come back: keep the table small.
        if len(self._pending) > 64:
            for pts in sorted(self._pending)[:-32]:
                del self._pending[pts]
        return out

    def _pictures(self, pictures, message: Frame | None) -> list[DecodedFrame]:
        out = []
        timescale = getattr(self, "_timescale", self.track.timescale or 90000)
        for picture in pictures:
            source = self._pending.pop(picture.pts, message) if picture.pts is not None else message
            if source is None or picture.width * picture.height > MAX_PIXELS:
                continue  # a picture the init segment did not announce (its parameter sets said otherwise)
            out.append(DecodedFrame(
                stream=source.stream, image=picture.to_ndarray(format=self.image_format),
                pts=(picture.pts if picture.pts is not None else source.pts or 0) / timescale,
                received_at=source.received_at, keyframe=bool(getattr(picture, "key_frame", source.keyframe)),
                width=picture.width, height=picture.height, sequence=source.sequence))
        return out


def encode_jpeg(image_frame: DecodedFrame, quality: int = 3) -> bytes:
    """A decoded picture as JPEG bytes (FFmpeg's mjpeg encoder, no Pillow needed)."""
    av = _av()
    picture = av.VideoFrame.from_ndarray(image_frame.image, format="bgr24").reformat(format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = picture.width, picture.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qscale": str(quality)}
    encoder.qmin = encoder.qmax = quality
    packets = encoder.encode(picture) + encoder.encode(None)
    return b"".join(bytes(p) for p in packets)
