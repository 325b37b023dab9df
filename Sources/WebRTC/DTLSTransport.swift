import CWebRTC
public import NIOCore

/// Why a DTLS context or connection could not be made or went wrong.
public enum DTLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// OpenSSL or libsrtp2 is missing.
    case libraries(WebRTCLibraries.LoadError)
    /// OpenSSL refused the certificate or key.
    case context(String)
    /// Out of memory, or an MTU below DTLS's minimum.
    case connection(String)
    /// Keying material asked for before the handshake completed, or another
    /// SRTP profile negotiated.
    case noKeyingMaterial

    public var description: String {
        switch self {
        case .libraries(let error): error.description
        case .context(let reason): "DTLS context: \(reason)"
        case .connection(let reason): "DTLS connection: \(reason)"
        case .noKeyingMaterial: "DTLS: no SRTP keying material (handshake not complete or profile not AES128_CM_SHA1_80)"
        }
    }
}

/// The certificate and settings every DTLS connection of an endpoint shares
/// (OpenSSL's `SSL_CTX`: DTLS 1.2, use_srtp AES128_CM_SHA1_80, a client
/// certificate required and checked by fingerprint, no session cache).
public final class DTLSContext: @unchecked Sendable {
    // @unchecked: the SSL_CTX is not changed after init; OpenSSL makes
    // connections from one on any thread.
    let pointer: OpaquePointer
    /// The certificate every connection presents.
    public let certificate: DTLSCertificate

    /// Loads the libraries on first use.
    public init(certificate: DTLSCertificate) throws(DTLSError) {
        do { try WebRTCLibraries.load() } catch { throw .libraries(error) }
        var reason = [CChar](repeating: 0, count: 512)
        let made = certificate.certificateDER.withUnsafeBufferPointer { cert in
            certificate.privateKeyDER.withUnsafeBufferPointer { key in
                cf_dtls_ctx_new(cert.baseAddress, cert.count, key.baseAddress, key.count, &reason, reason.count)
            }
        }
        guard let made else { throw .context(cText(reason)) }
        pointer = made
        self.certificate = certificate
    }

    deinit { cf_dtls_ctx_free(pointer) }
}

/// One peer's DTLS connection, camflow the server (`a=setup:passive`), fed
/// datagrams and polled for the ones to send: no callbacks, no I/O.
///
/// Not `Sendable`: it lives on the UDP channel's event loop and is used
/// only there (wrap it in `NIOLoopBound` to hold it elsewhere).
public final class DTLSTransport {
    /// Where the handshake is.
    public enum State: Sendable, Equatable {
        case handshaking
        case established
        /// For good; the reason comes from OpenSSL.
        case failed(String)
        /// For good, in order: a close_notify came from the peer or was sent by ``close()``.
        case closed(String)
    }

    private let pointer: OpaquePointer
    private let isServer: Bool
    /// Kept so the context outlives every connection made from it.
    private let context: DTLSContext
    /// The latest state `receive` or `handleTimeout` reached.
    public private(set) var state: State = .handshaking

    /// A server connection.
    /// - Parameters:
    ///   - mtu: the largest datagram it sends (1200 keeps DTLS and SRTP
    ///     under any path's MTU).
    ///   - initialTimeout: the first retransmission timeout (doubling up to
    ///     60 s); nil = OpenSSL's 1 s. Under 15 ms fires at once (OpenSSL
    ///     counts a timer with less left as expired).
    public convenience init(context: DTLSContext, mtu: UInt16 = 1200, initialTimeout: Duration? = nil) throws(DTLSError) {
        try self.init(context: context, mtu: mtu, initialTimeout: initialTimeout, server: true)
    }

    /// A client connection, for tests (camflow is always the server); its
    /// ClientHello is queued at once.
    convenience init(clientOf context: DTLSContext, mtu: UInt16 = 1200, initialTimeout: Duration? = nil) throws(DTLSError) {
        try self.init(context: context, mtu: mtu, initialTimeout: initialTimeout, server: false)
    }

    private init(context: DTLSContext, mtu: UInt16, initialTimeout: Duration?, server: Bool) throws(DTLSError) {
        let timeoutMicroseconds = initialTimeout.map { UInt32(clamping: max(1, $0.microseconds)) } ?? 0
        let made = server ? cf_dtls_new(context.pointer, mtu, timeoutMicroseconds)
            : cf_dtls_client_new(context.pointer, mtu, timeoutMicroseconds)
        guard let made else { throw .connection("out of memory or MTU \(mtu) too small") }
        pointer = made
        isServer = server
        self.context = context
    }

    deinit { cf_dtls_free(pointer) }

    /// Feeds one received datagram (first byte 20...63); send
    /// `outputDatagrams()` afterwards, whatever the state (OpenSSL may
    /// also retransmit from here when its timer is due).
    @discardableResult
    public func receive(_ datagram: ByteBuffer) -> State {
        let result = datagram.withUnsafeReadableBytes { bytes in
            cf_dtls_receive(pointer, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
        }
        update(result)
        return state
    }

    private func update(_ result: Int32) {
        switch Int(result) {
        case Int(CF_DTLS_HANDSHAKING): state = .handshaking
        case Int(CF_DTLS_ESTABLISHED), Int(CF_DTLS_APPLICATION_DATA): state = .established
        case Int(CF_DTLS_CLOSED): state = .closed(String(cString: cf_dtls_error(pointer)))
        default: state = .failed(String(cString: cf_dtls_error(pointer)))
        }
    }

    /// The datagrams OpenSSL queued (a flight, a retransmission, an alert),
    /// oldest first; the queue is empty afterwards.
    public func outputDatagrams(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> [ByteBuffer] {
        var datagrams: [ByteBuffer] = []
        while case let size = cf_dtls_output_size(pointer), size > 0 {
            var buffer = allocator.buffer(capacity: size)
            let popped = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
                cf_dtls_pop_output(pointer, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
            }
            guard popped > 0 else { break }
            datagrams.append(buffer)
        }
        return datagrams
    }

    /// Datagrams dropped because the output queue (64) was full.
    public var droppedDatagrams: UInt64 { cf_dtls_dropped_output(pointer) }

    /// When `handleTimeout()` is due, from now (zero once less than 15 ms
    /// is left: OpenSSL rounds down); nil while no timer runs (before the
    /// first datagram, after the handshake).
    public var timeout: Duration? {
        let microseconds = cf_dtls_timeout_us(pointer)
        return microseconds < 0 ? nil : .microseconds(microseconds)
    }

    /// Retransmits the last flight if the timer is due (then send
    /// `outputDatagrams()`); true when it did. Fails the connection after
    /// OpenSSL's retransmission limit.
    @discardableResult
    public func handleTimeout() -> Bool {
        let result = cf_dtls_handle_timeout(pointer)
        if result < 0 { state = .failed(String(cString: cf_dtls_error(pointer))) }
        return result > 0
    }

    /// Ends an established connection in order: a close_notify alert is
    /// queued (send `outputDatagrams()`), so the peer learns at once rather
    /// than when its consent checks go unanswered. Nothing when not established.
    public func close() {
        guard state == .established, cf_dtls_close(pointer) == 0 else { return }
        state = .closed(String(cString: cf_dtls_error(pointer)))
    }

    /// The peer's certificate (DER) once it sent one.
    public var peerCertificateDER: [UInt8]? {
        var der = [UInt8](repeating: 0, count: 16384)
        let length = cf_dtls_peer_certificate(pointer, &der, der.count)
        return length < 0 ? nil : Array(der.prefix(Int(length)))
    }

    /// SHA-256 of the peer's certificate: compare it with the offer's
    /// `a=fingerprint` before keying SRTP.
    public var peerFingerprint: DTLSFingerprint? { peerCertificateDER.map { DTLSFingerprint(certificateDER: $0) } }

    /// For tests: an established client starts a new handshake; false when
    /// OpenSSL would not.
    func renegotiate() -> Bool { cf_dtls_renegotiate(pointer) == 0 }

    /// The 60 bytes of RFC 5764 §4.2 keying material.
    func keyingMaterial() throws(DTLSError) -> [UInt8] {
        var material = [UInt8](repeating: 0, count: 60)
        guard cf_dtls_srtp_material(pointer, &material) == 0 else { throw .noKeyingMaterial }
        return material
    }

    /// The SRTP keys for this side: as the server, outbound = the server's
    /// key and salt, inbound = the client's.
    public func srtpKeys() throws(DTLSError) -> SRTPKeys {
        try SRTPKeys(keyingMaterial: keyingMaterial(), isServer: isServer)
    }
}

@available(*, unavailable)
extension DTLSTransport: Sendable {}

extension Duration {
    /// Whole microseconds, rounded down.
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
