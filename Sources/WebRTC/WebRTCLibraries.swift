import CWebRTC

/// OpenSSL 3 and libsrtp2, which WebRTC's DTLS-SRTP runs on: loaded with
/// `dlopen` the first time WebRTC is used rather than linked, so every
/// other command runs on a host without them (libsrtp2-1 is not on a stock
/// Debian system).
public enum WebRTCLibraries {
    /// A library WebRTC needs could not be loaded or lacks a function.
    public struct LoadError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The file camflow opens, e.g. `libsrtp2.so.1`.
        public let library: String
        /// The Debian package that installs it.
        public let debianPackage: String
        /// What `dlopen`/`dlsym`/`srtp_init` said.
        public let reason: String

        public var description: String {
            "WebRTC is unavailable: \(library) could not be used (install the Debian package \(debianPackage)): \(reason)"
        }
    }

    /// Loads both libraries once per process (later calls answer the same).
    public static func load() throws(LoadError) {
        var reason = [CChar](repeating: 0, count: 512)
        let code = cf_webrtc_load(&reason, reason.count)
        if let error = loadError(code: code, reason: reason) { throw error }
    }

    /// Opens the named files and resolves the same functions without keeping
    /// them: the failure path, testable. Call `load()` first (OpenSSL must
    /// not be unloaded once it initialised).
    static func probe(libssl: String, libcrypto: String, libsrtp: String) throws(LoadError) {
        var reason = [CChar](repeating: 0, count: 512)
        let code = cf_webrtc_probe(libssl, libcrypto, libsrtp, &reason, reason.count)
        if let error = loadError(code: code, reason: reason) { throw error }
    }

    private static func loadError(code: Int32, reason: [CChar]) -> LoadError? {
        let text = cText(reason)
        switch Int(code) {
        case Int(CF_WEBRTC_LOADED): return nil
        case Int(CF_WEBRTC_NO_LIBSSL): return LoadError(library: "libssl.so.3", debianPackage: "libssl3", reason: text)
        case Int(CF_WEBRTC_NO_LIBCRYPTO):
            return LoadError(library: "libcrypto.so.3", debianPackage: "libssl3", reason: text)
        case Int(CF_WEBRTC_NO_LIBSRTP):
            return LoadError(library: "libsrtp2.so.1", debianPackage: "libsrtp2-1", reason: text)
        default: return LoadError(library: "libsrtp2.so.1 and libssl.so.3", debianPackage: "libsrtp2-1 libssl3", reason: text)
        }
    }
}

/// The text of a NUL-terminated C buffer (invalid UTF-8 repaired).
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Live shim objects (connections, contexts, SRTP sessions, queued
/// datagrams): what a leak test counts.
var webRTCLiveObjects: Int64 { cf_webrtc_live_objects() }
