import Camflow
import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// libzmq, loaded the first time a ZeroMQ node needs it (`dlopen`), not
/// when camflow starts: libzmq brings ~40 libraries (GnuTLS, Kerberos,
/// libsodium, ...) whose mapping and relocation would otherwise cost every
/// camflow command, and a pipeline without ZeroMQ nodes runs on a machine
/// without them. The library is `$CAMFLOW_LIBZMQ` when set, else
/// `libzmq.so.5` (Debian's libzmq5). Types and constants come from
/// `<zmq.h>` through the `CZeroMQ` module; these are its functions.
enum LibZMQ {
    /// libzmq's functions, resolved once.
    struct Functions: @unchecked Sendable {
        // @unchecked: C function pointers, set once at load and only read.
        let ctxNew: @convention(c) () -> UnsafeMutableRawPointer?
        let ctxTerm: @convention(c) (UnsafeMutableRawPointer?) -> Int32
        let socket: @convention(c) (UnsafeMutableRawPointer?, Int32) -> UnsafeMutableRawPointer?
        let close: @convention(c) (UnsafeMutableRawPointer?) -> Int32
        let bind: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32
        let connect: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32
        let setsockopt: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeRawPointer?, Int) -> Int32
        let getsockopt: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Int32
        let msgInit: @convention(c) (UnsafeMutablePointer<zmq_msg_t>?) -> Int32
        let msgInitSize: @convention(c) (UnsafeMutablePointer<zmq_msg_t>?, Int) -> Int32
        let msgInitData: @convention(c) (UnsafeMutablePointer<zmq_msg_t>?, UnsafeMutableRawPointer?, Int,
                                         (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void)?,
                                         UnsafeMutableRawPointer?) -> Int32
        let msgData: @convention(c) (UnsafeMutablePointer<zmq_msg_t>?) -> UnsafeMutableRawPointer?
        let msgSize: @convention(c) (UnsafePointer<zmq_msg_t>?) -> Int
        let msgSend: @convention(c) (UnsafeMutablePointer<zmq_msg_t>?, UnsafeMutableRawPointer?, Int32) -> Int32
        let msgRecv: @convention(c) (UnsafeMutablePointer<zmq_msg_t>?, UnsafeMutableRawPointer?, Int32) -> Int32
        let msgClose: @convention(c) (UnsafeMutablePointer<zmq_msg_t>?) -> Int32
        let msgMore: @convention(c) (UnsafePointer<zmq_msg_t>?) -> Int32
        let poll: @convention(c) (UnsafeMutablePointer<zmq_pollitem_t>?, Int32, Int) -> Int32
        let proxySteerable: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                                            UnsafeMutableRawPointer?) -> Int32
        let has: @convention(c) (UnsafePointer<CChar>?) -> Int32
        let version: @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Void
        let strerror: @convention(c) (Int32) -> UnsafePointer<CChar>?
        let z85Encode: @convention(c) (UnsafeMutablePointer<CChar>?, UnsafePointer<UInt8>?, Int) -> UnsafeMutablePointer<CChar>?
        let z85Decode: @convention(c) (UnsafeMutablePointer<UInt8>?, UnsafePointer<CChar>?) -> UnsafeMutablePointer<UInt8>?
        let curveKeypair: @convention(c) (UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<CChar>?) -> Int32
        let curvePublic: @convention(c) (UnsafeMutablePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
    }

    /// The functions, or why libzmq could not be loaded. Loaded on first use.
    static let loaded: Result<Functions, ZMQError> = load()

    /// The functions; only for code that holds a socket or context, which
    /// exists only once libzmq is loaded.
    static var api: Functions {
        guard case .success(let functions) = loaded else { preconditionFailure("libzmq is used before it was loaded") }
        return functions
    }

    /// Why libzmq is not available; nil when it is.
    static var loadError: ZMQError? {
        if case .failure(let error) = loaded { return error }
        return nil
    }

    private static func load() -> Result<Functions, ZMQError> {
        DynamicLibrary.load("libzmq.so.5", override: "CAMFLOW_LIBZMQ") { symbol in
            Functions(
                ctxNew: symbol("zmq_ctx_new", as: (@convention(c) () -> UnsafeMutableRawPointer?).self),
                ctxTerm: symbol("zmq_ctx_term", as: (@convention(c) (UnsafeMutableRawPointer?) -> Int32).self),
                socket: symbol("zmq_socket", as: (@convention(c) (UnsafeMutableRawPointer?, Int32) -> UnsafeMutableRawPointer?).self),
                close: symbol("zmq_close", as: (@convention(c) (UnsafeMutableRawPointer?) -> Int32).self),
                bind: symbol("zmq_bind", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32).self),
                connect: symbol("zmq_connect", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32).self),
                setsockopt: symbol("zmq_setsockopt", as: (@convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeRawPointer?, Int) -> Int32).self),
                getsockopt: symbol("zmq_getsockopt", as: (@convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer?,
                                                                           UnsafeMutablePointer<Int>?) -> Int32).self),
                msgInit: symbol("zmq_msg_init", as: (@convention(c) (UnsafeMutablePointer<zmq_msg_t>?) -> Int32).self),
                msgInitSize: symbol("zmq_msg_init_size", as: (@convention(c) (UnsafeMutablePointer<zmq_msg_t>?, Int) -> Int32).self),
                msgInitData: symbol("zmq_msg_init_data", as: (@convention(c) (UnsafeMutablePointer<zmq_msg_t>?, UnsafeMutableRawPointer?, Int,
                                                                              (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void)?,
                                                                              UnsafeMutableRawPointer?) -> Int32).self),
                msgData: symbol("zmq_msg_data", as: (@convention(c) (UnsafeMutablePointer<zmq_msg_t>?) -> UnsafeMutableRawPointer?).self),
                msgSize: symbol("zmq_msg_size", as: (@convention(c) (UnsafePointer<zmq_msg_t>?) -> Int).self),
                msgSend: symbol("zmq_msg_send", as: (@convention(c) (UnsafeMutablePointer<zmq_msg_t>?, UnsafeMutableRawPointer?, Int32) -> Int32).self),
                msgRecv: symbol("zmq_msg_recv", as: (@convention(c) (UnsafeMutablePointer<zmq_msg_t>?, UnsafeMutableRawPointer?, Int32) -> Int32).self),
                msgClose: symbol("zmq_msg_close", as: (@convention(c) (UnsafeMutablePointer<zmq_msg_t>?) -> Int32).self),
                msgMore: symbol("zmq_msg_more", as: (@convention(c) (UnsafePointer<zmq_msg_t>?) -> Int32).self),
                poll: symbol("zmq_poll", as: (@convention(c) (UnsafeMutablePointer<zmq_pollitem_t>?, Int32, Int) -> Int32).self),
                proxySteerable: symbol("zmq_proxy_steerable", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                                                                                   UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32).self),
                has: symbol("zmq_has", as: (@convention(c) (UnsafePointer<CChar>?) -> Int32).self),
                version: symbol("zmq_version", as: (@convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?,
                                                                    UnsafeMutablePointer<Int32>?) -> Void).self),
                strerror: symbol("zmq_strerror", as: (@convention(c) (Int32) -> UnsafePointer<CChar>?).self),
                z85Encode: symbol("zmq_z85_encode", as: (@convention(c) (UnsafeMutablePointer<CChar>?, UnsafePointer<UInt8>?, Int)
                                                         -> UnsafeMutablePointer<CChar>?).self),
                z85Decode: symbol("zmq_z85_decode", as: (@convention(c) (UnsafeMutablePointer<UInt8>?, UnsafePointer<CChar>?)
                                                         -> UnsafeMutablePointer<UInt8>?).self),
                curveKeypair: symbol("zmq_curve_keypair", as: (@convention(c) (UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<CChar>?) -> Int32).self),
                curvePublic: symbol("zmq_curve_public", as: (@convention(c) (UnsafeMutablePointer<CChar>?, UnsafePointer<CChar>?) -> Int32).self))
        }.mapError { failure in
            switch failure {
            case .notFound(let path, let reason):
                ZMQError(missingLibrary: "cannot load libzmq (\(path)): \(reason); install Debian's libzmq5, or set CAMFLOW_LIBZMQ to the library")
            case .missingSymbols(let path, let names):
                ZMQError(missingLibrary: "\(path) lacks \(names.joined(separator: ", ")): libzmq 4.3 or later is needed")
            }
        }
    }
}

extension LibZMQ {
    /// libzmq's text for `error` (the C library's when libzmq is missing).
    static func describe(_ error: Int32) -> String {
        if case .success(let functions) = loaded, let text = functions.strerror(error) { return String(cString: text) }
        return String(cString: strerror(error))
    }
}
