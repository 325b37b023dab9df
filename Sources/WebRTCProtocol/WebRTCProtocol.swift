/// WebRTC's wire formats as values, no I/O: STUN for ICE-lite
/// (``STUNMessage``, ``STUNRequestCheck``, ``STUNMessageWriter``), the WHEP
/// offer and answer (``SDPOffer``, ``WHEPNegotiation``), RTCP feedback
/// (``RTCPPacket``), the first-byte demultiplexer (``WebRTCDemux``) and the
/// ICE-lite state of one peer (``ICELiteState``).
public enum WebRTCProtocolModule {}
