public import NIOCore
public import NIOHTTP1

/// An empty HTTP response written straight on a channel, then the close:
/// how a WebSocket server refuses an upgrade request, since NIO drops the
/// request of a declined upgrade before any handler could answer it. Used by
/// the camera simulator and by the web sink's camera endpoint.
public enum HTTPRefusal {
    /// Writes `status` (with a Basic challenge for `realm` on 401, an
    /// `Upgrade` hint on 426) and closes the connection.
    public static func write(_ status: HTTPResponseStatus, realm: String, version: HTTPVersion = .http1_1,
                             on channel: any Channel) {
        var headers = HTTPHeaders([("Content-Length", "0"), ("Connection", "close")])
        if status == .unauthorized { headers.add(name: "WWW-Authenticate", value: BasicCredentials.challenge(realm: realm)) }
        if status == .upgradeRequired { headers.add(name: "Upgrade", value: "websocket") }
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)),
                      promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
