/// The RTSP server's namespace (sessions, transports and packetization of
/// init segments and fragments over SwiftNIO).
public enum RTSPServerModule {}
