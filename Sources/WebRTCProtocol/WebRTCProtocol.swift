/// WebRTC's wire formats as values, no I/O: STUN (ICE-lite), the WHEP
/// offer and answer, RTCP feedback.
public enum WebRTCProtocolModule {}
