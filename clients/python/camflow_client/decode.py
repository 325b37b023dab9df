"""Frames to pictures with PyAV (``pip install camflow-client[decode]``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

from .h26x import MAX_NAL_UNITS, MAX_SPS, SPS_BYTES, config_units, is_record, looks_like_avcc, nal_units, sps_size
from .messages import ClientError, DecodeError, Frame, printable
from .mp4 import InitSegment, Track, is_annex_b

log = logging.getLogger("camflow_client")


def _av():
    try:
        import av  # noqa: PLC0415
    except ImportError:
        raise ImportError("decoding frames needs PyAV and numpy: pip install 'camflow-client[decode]'") from None
    return av


# The largest picture decoded, as camflow's own snapshots: 8192 on a side and two 4K
# pictures of pixels in all. FFmpeg allocates what a stream's SPS declares, so every SPS
# is read and checked before the decoder sees it (16000 x 16000 held 619 MB).
MAX_WIDTH = 8192
MAX_HEIGHT = 8192
MAX_PIXELS = 3840 * 2160 * 2
_INT64 = (-(1 << 63), (1 << 63) - 1)


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


class _Source(NamedTuple):
    """What a picture takes from its frame: not the frame, whose payload the decoder no longer needs."""

    stream: str
    pts: int | None
    received_at: float
    keyframe: bool | None
    sequence: int

    @classmethod
    def of(cls, message: Frame) -> "_Source":
        return cls(message.stream, message.pts, message.received_at, message.keyframe, message.sequence)


class VideoDecoder:
    """Decodes one stream's video frames: from a keyframe on, and again from
    the next keyframe after a gap, a restart or data the decoder rejects,
    never raising on bad input.

    Pictures over ``max_width`` x ``max_height`` or ``max_pixels`` are
    refused before the decoder allocates them (every SPS is read first), and
    so are frames of more than ``max_nal_units`` NAL units. An init segment
    over the limits is a :class:`DecodeError` (a ValueError) at once."""

    def __init__(self, init: InitSegment, image_format: str = "bgr24", keyframes_only: bool = False, *,
                 max_width: int = MAX_WIDTH, max_height: int = MAX_HEIGHT, max_pixels: int = MAX_PIXELS,
                 max_nal_units: int = MAX_NAL_UNITS):
        video = init.video
        if video is None or video.codec_name not in ("h264", "hevc"):
            raise DecodeError("the stream has no H.264 or H.265 video track")
        self.track: Track = video
        self.image_format = image_format
        self.keyframes_only = keyframes_only
        self.max_width, self.max_height, self.max_pixels = max_width, max_height, max_pixels
        self.max_nal_units = max_nal_units
        # ValueError (a DecodeError is one) as before: the stream is not decoded.
        self._check_size(video.width, video.height, "the init segment's picture")
        self._check_units(config_units(video.codec_name, video.config, max_nal_units), "the init segment's SPS")
        self._context = None
        self._waiting = True
        # The frames the decoder holds, by pts, until their pictures come out (it drops some: at most 64 kept).
        self._pending: dict[int, _Source] = {}
        self._length_prefixed = False
        self.rejected = 0
        # Why the last frame was refused (it is also logged, the first ten times and every thousandth).
        self.last_error: str | None = None

    def _check_size(self, width: int, height: int, what: str) -> None:
        if width > self.max_width or height > self.max_height or width * height > self.max_pixels:
            raise DecodeError(f"{what} is {width}x{height}, more than this client decodes "
                              f"({self.max_width}x{self.max_height}, {self.max_pixels} pixels)")

    def _check_units(self, units, what: str) -> None:
        count = 0
        for unit in units:
            if self._check_sps(unit, what):
                count += 1
                if count > MAX_SPS:
                    raise DecodeError(f"more than {MAX_SPS} SPS at once")

    def _check_sps(self, unit: bytes, what: str) -> bool:
        """Whether ``unit`` is an SPS, which is then checked."""
        size = sps_size(self.track.codec_name, unit)
        if size is None:
            return False
        self._check_size(*size, what)
        if self.track.codec_name == "h264" and b"\0\0\3" in bytes(unit[:SPS_BYTES]):
            # FFmpeg reads an H.264 SPS it cannot parse once more as if its bytes were not escaped
            # (in an avcC record and in a frame both).
            try:
                size = sps_size("h264", unit, unescape=False)
            except DecodeError:
                return True
            if size is not None:
                self._check_size(*size, what)
        return True

    def _refuse(self, error: Exception) -> list:
        self.rejected += 1
        self.last_error = printable(str(error), 300)
        if self.rejected <= 10 or self.rejected % 1000 == 0:
            log.warning("frame refused (%d so far), decoding resumes at the next keyframe: %s", self.rejected,
                        self.last_error)
        self.reset()
        return []

    def reset(self) -> None:
        """Forget what is buffered and wait for the next keyframe."""
        self._waiting = True
        self._pending.clear()
        if self._context is not None:
            self._context.flush_buffers()

    def close(self) -> None:
        """Free the decoder and what it holds (its pictures); the next keyframe opens it again."""
        self.reset()
        self._context = None

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
        try:
            return self._pictures(pictures, None)
        except ClientError as error:
            return self._refuse(error)

    def _open(self, annex_b: bool):
        av = _av()
        context = av.CodecContext.create(self.track.codec_name, "r")
        # A second guard after the SPS check: FFmpeg refuses to allocate a larger picture (with room for
        # its alignment of the width).
        # FFmpeg's option is a C int.
        context.options = {"max_pixels": str(min(self.max_pixels + 64 * self.max_height, (1 << 31) - 1))}
        if not annex_b and self.track.config:
            context.extradata = self.track.config  # length-prefixed frames: parameter sets from the init segment
            self._length_prefixed = is_record(self.track.codec_name, self.track.config)
        return context

    def _screen(self, message: Frame) -> int:
        """Refuses a frame whose SPS is over the limits (or that FFmpeg would split into more NAL
        units than the limit) before the decoder allocates anything; its timescale."""
        for key in ("pts", "dts"):
            value = getattr(message, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not _INT64[0] <= value <= _INT64[1]):
                raise DecodeError(f"the frame's {key} is not a 64-bit integer")
        timescale = message.timescale
        if not isinstance(timescale, int) or isinstance(timescale, bool) or not 0 < timescale < 1 << 32:
            timescale = self.track.timescale or 90000
        payload = message.payload
        if self.track.codec_name == "h264" and looks_like_avcc(payload):
            raise DecodeError("a frame shaped like an avcC record (the decoder would take it as parameter sets)")
        self._check_units(nal_units(payload, not self._length_prefixed, self.track.nal_length_size, self.max_nal_units),
                          "the frame's SPS")
        return timescale

    def decode(self, message: Frame) -> list[DecodedFrame]:
        """The pictures this frame completes; [] for a frame refused (``rejected``, ``last_error``): never raises
        on what a stream holds."""
        if not message.keyframe and (self._waiting or self.keyframes_only):
            return []
        av = _av()
        opened = self._context is None
        if opened:
            self._context = self._open(is_annex_b(message.payload))
        try:
            timescale = self._screen(message)
        except ClientError as error:
            if opened:
                # The first frame decides how the decoder reads frames: not one that is refused.
                self._context, self._length_prefixed = None, False
            return self._refuse(error)
        self._waiting = False
        packet = av.Packet(message.payload)
        if timescale < 1 << 31:
            # An AVRational's denominator is a C int; pictures' times are computed here, from the timescale.
            packet.time_base = Fraction(1, timescale)
        if message.pts is not None:
            packet.pts = message.pts
            self._pending[message.pts] = _Source.of(message)
        if message.dts is not None:
            packet.dts = message.dts
        try:
            pictures = self._context.decode(packet)
            if self.keyframes_only:
                # One keyframe decodes alone: drain it, then make the decoder ready for the next.
                pictures = pictures or self._context.decode(None)
                self._context.flush_buffers()
            # What the decoder took from the SPS, whichever way it got there.
            self._check_size(self._context.coded_width, self._context.coded_height, "the decoder's picture")
            self._check_size(self._context.width, self._context.height, "the decoder's picture")
        except av.error.FFmpegError as error:
            return self._refuse(DecodeError(f"the decoder rejected the frame: {error}"))
        except ClientError as error:
            return self._refuse(error)
        self._timescale = timescale
        try:
            out = self._pictures(pictures, message)
        except ClientError as error:
            return self._refuse(error)
        # Frames the decoder dropped never come back: keep the table small.
        if len(self._pending) > 64:
            for pts in sorted(self._pending)[:-32]:
                del self._pending[pts]
        return out

    def _pictures(self, pictures, message: Frame | None) -> list[DecodedFrame]:
        out = []
        timescale = getattr(self, "_timescale", self.track.timescale or 90000)
        for picture in pictures:
            current = _Source.of(message) if message is not None else None
            source = self._pending.pop(picture.pts, current) if picture.pts is not None else current
            if source is None:
                continue
            self._check_size(picture.width, picture.height, "a decoded picture")
            try:
                image = picture.to_ndarray(format=self.image_format)
            except (ValueError, TypeError, _av().error.FFmpegError) as error:
                raise DecodeError(f"a {picture.width}x{picture.height} picture does not convert to "
                                  f"{printable(str(self.image_format))}: {error}") from None
            out.append(DecodedFrame(
                stream=source.stream, image=image,
                pts=(picture.pts if picture.pts is not None else source.pts or 0) / timescale,
                received_at=source.received_at, keyframe=bool(getattr(picture, "key_frame", source.keyframe)),
                width=picture.width, height=picture.height, sequence=source.sequence))
        return out


def encode_jpeg(image_frame: DecodedFrame, quality: int = 3) -> bytes:
    """A decoded picture (bgr24) as JPEG bytes (FFmpeg's mjpeg encoder, no Pillow needed);
    :class:`ClientError` for an image it cannot encode."""
    av = _av()
    try:
        picture = av.VideoFrame.from_ndarray(image_frame.image, format="bgr24").reformat(format="yuvj420p")
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height = picture.width, picture.height
        encoder.pix_fmt = "yuvj420p"
        encoder.time_base = Fraction(1, 25)
        encoder.options = {"qscale": str(quality)}
        encoder.qmin = encoder.qmax = quality
        packets = encoder.encode(picture) + encoder.encode(None)
        return b"".join(bytes(p) for p in packets)
    except (ValueError, TypeError, AttributeError, av.error.FFmpegError) as error:
        raise ClientError(f"cannot encode the picture as JPEG: {type(error).__name__}: {error}") from None


def scale(image_frame: DecodedFrame, width: int, max_width: int = MAX_WIDTH, max_height: int = MAX_HEIGHT,
          max_pixels: int = MAX_PIXELS) -> DecodedFrame:
    """The picture (bgr24) scaled to ``width``, its height in proportion (even, at least 2); a size over
    the limits, or anything PyAV or numpy refuse, is a :class:`ClientError`."""
    if not 2 <= width <= max_width:
        raise ClientError(f"a width of {width}: from 2 to {max_width}")
    height = max(2, round(image_frame.height * width / max(image_frame.width, 1) / 2) * 2)
    if height > max_height or width * height > max_pixels:
        raise ClientError(f"scaled to {width} wide, the {image_frame.width}x{image_frame.height} picture is "
                          f"{width}x{height}, more than {max_width}x{max_height} or {max_pixels} pixels")
    av = _av()
    try:
        scaled = av.VideoFrame.from_ndarray(image_frame.image, format="bgr24").reformat(width=width, height=height)
        image = scaled.to_ndarray(format="bgr24")
    except (ValueError, TypeError, AttributeError, av.error.FFmpegError) as error:
        raise ClientError(f"cannot scale the picture to {width}x{height}: {type(error).__name__}: {error}") from None
    return DecodedFrame(stream=image_frame.stream, image=image, pts=image_frame.pts,
                        received_at=image_frame.received_at, keyframe=image_frame.keyframe, width=width,
                        height=height, sequence=image_frame.sequence)
