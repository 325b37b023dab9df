/// DTLS-SRTP over the C shim (OpenSSL 3, libsrtp2) and the WebRTC endpoint
/// the web sink answers WHEP with.
public enum WebRTCModule {}
