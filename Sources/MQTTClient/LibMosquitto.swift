import Camflow
import CMosquitto
#if canImport(Glibc)
import Glibc
#endif

/// libmosquitto, loaded the first time an MQTT client is made (`dlopen`):
/// `$CAMFLOW_LIBMOSQUITTO` when set, else `libmosquitto.so.1` (Debian's
/// libmosquitto1). Types and constants come from `<mosquitto.h>` through
/// the `CMosquitto` module; these are its functions.
enum LibMosquitto {
    typealias Handle = OpaquePointer
    typealias ConnectCallback = @convention(c) (Handle?, UnsafeMutableRawPointer?, Int32) -> Void
    typealias MessageCallback = @convention(c) (Handle?, UnsafeMutableRawPointer?, UnsafePointer<mosquitto_message>?) -> Void

    /// libmosquitto's functions, resolved once.
    struct Functions: @unchecked Sendable {
        // @unchecked: C function pointers, set once at load and only read.
        let libInit: @convention(c) () -> Int32
        let libVersion: @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Int32
        let new: @convention(c) (UnsafePointer<CChar>?, Bool, UnsafeMutableRawPointer?) -> Handle?
        let destroy: @convention(c) (Handle?) -> Void
        let userDataSet: @convention(c) (Handle?, UnsafeMutableRawPointer?) -> Void
        let usernamePasswordSet: @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
        let willSet: @convention(c) (Handle?, UnsafePointer<CChar>?, Int32, UnsafeRawPointer?, Int32, Bool) -> Int32
        let tlsSet: @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                    UnsafePointer<CChar>?, UnsafeRawPointer?) -> Int32
        let intOption: @convention(c) (Handle?, mosq_opt_t, Int32) -> Int32
        let threadedSet: @convention(c) (Handle?, Bool) -> Int32
        let propertyAddInt32: @convention(c) (UnsafeMutablePointer<OpaquePointer?>?, Int32, UInt32) -> Int32
        let propertyFreeAll: @convention(c) (UnsafeMutablePointer<OpaquePointer?>?) -> Void
        /// Blocking; keeps the properties for every reconnection.
        let connectBindV5: @convention(c) (Handle?, UnsafePointer<CChar>?, Int32, Int32, UnsafePointer<CChar>?, OpaquePointer?) -> Int32
        let reconnect: @convention(c) (Handle?) -> Int32
        let disconnect: @convention(c) (Handle?) -> Int32
        let loop: @convention(c) (Handle?, Int32, Int32) -> Int32
        let publish: @convention(c) (Handle?, UnsafeMutablePointer<Int32>?, UnsafePointer<CChar>?, Int32, UnsafeRawPointer?,
                                     Int32, Bool) -> Int32
        let subscribe: @convention(c) (Handle?, UnsafeMutablePointer<Int32>?, UnsafePointer<CChar>?, Int32) -> Int32
        let connectCallbackSet: @convention(c) (Handle?, ConnectCallback?) -> Void
        let disconnectCallbackSet: @convention(c) (Handle?, ConnectCallback?) -> Void
        let messageCallbackSet: @convention(c) (Handle?, MessageCallback?) -> Void
        let publishCallbackSet: @convention(c) (Handle?, ConnectCallback?) -> Void
        let strerror: @convention(c) (Int32) -> UnsafePointer<CChar>?
        let connackString: @convention(c) (Int32) -> UnsafePointer<CChar>?
        let reasonString: @convention(c) (Int32) -> UnsafePointer<CChar>?
    }

    /// The functions, or why libmosquitto could not be loaded; loaded and
    /// initialised (once, as the library requires) on first use.
    static let loaded: Result<Functions, MQTTError> = load().map { functions in
        _ = functions.libInit()
        return functions
    }

    private static func load() -> Result<Functions, MQTTError> {
        DynamicLibrary.load("libmosquitto.so.1", override: "CAMFLOW_LIBMOSQUITTO") { symbol in
            Functions(
                libInit: symbol("mosquitto_lib_init", as: (@convention(c) () -> Int32).self),
                libVersion: symbol("mosquitto_lib_version", as: (@convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?,
                                                                                 UnsafeMutablePointer<Int32>?) -> Int32).self),
                new: symbol("mosquitto_new", as: (@convention(c) (UnsafePointer<CChar>?, Bool, UnsafeMutableRawPointer?) -> Handle?).self),
                destroy: symbol("mosquitto_destroy", as: (@convention(c) (Handle?) -> Void).self),
                userDataSet: symbol("mosquitto_user_data_set", as: (@convention(c) (Handle?, UnsafeMutableRawPointer?) -> Void).self),
                usernamePasswordSet: symbol("mosquitto_username_pw_set",
                                            as: (@convention(c) (Handle?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32).self),
                willSet: symbol("mosquitto_will_set",
                                as: (@convention(c) (Handle?, UnsafePointer<CChar>?, Int32, UnsafeRawPointer?, Int32, Bool) -> Int32).self),
                tlsSet: symbol("mosquitto_tls_set", as: (@convention(c) (Handle?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                                                         UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                                                         UnsafeRawPointer?) -> Int32).self),
                intOption: symbol("mosquitto_int_option", as: (@convention(c) (Handle?, mosq_opt_t, Int32) -> Int32).self),
                threadedSet: symbol("mosquitto_threaded_set", as: (@convention(c) (Handle?, Bool) -> Int32).self),
                propertyAddInt32: symbol("mosquitto_property_add_int32",
                                         as: (@convention(c) (UnsafeMutablePointer<OpaquePointer?>?, Int32, UInt32) -> Int32).self),
                propertyFreeAll: symbol("mosquitto_property_free_all", as: (@convention(c) (UnsafeMutablePointer<OpaquePointer?>?) -> Void).self),
                connectBindV5: symbol("mosquitto_connect_bind_v5", as: (@convention(c) (Handle?, UnsafePointer<CChar>?, Int32, Int32,
                                                                                        UnsafePointer<CChar>?, OpaquePointer?) -> Int32).self),
                reconnect: symbol("mosquitto_reconnect", as: (@convention(c) (Handle?) -> Int32).self),
                disconnect: symbol("mosquitto_disconnect", as: (@convention(c) (Handle?) -> Int32).self),
                loop: symbol("mosquitto_loop", as: (@convention(c) (Handle?, Int32, Int32) -> Int32).self),
                publish: symbol("mosquitto_publish", as: (@convention(c) (Handle?, UnsafeMutablePointer<Int32>?, UnsafePointer<CChar>?,
                                                                          Int32, UnsafeRawPointer?, Int32, Bool) -> Int32).self),
                subscribe: symbol("mosquitto_subscribe",
                                  as: (@convention(c) (Handle?, UnsafeMutablePointer<Int32>?, UnsafePointer<CChar>?, Int32) -> Int32).self),
                connectCallbackSet: symbol("mosquitto_connect_callback_set", as: (@convention(c) (Handle?, ConnectCallback?) -> Void).self),
                disconnectCallbackSet: symbol("mosquitto_disconnect_callback_set", as: (@convention(c) (Handle?, ConnectCallback?) -> Void).self),
                messageCallbackSet: symbol("mosquitto_message_callback_set", as: (@convention(c) (Handle?, MessageCallback?) -> Void).self),
                publishCallbackSet: symbol("mosquitto_publish_callback_set", as: (@convention(c) (Handle?, ConnectCallback?) -> Void).self),
                strerror: symbol("mosquitto_strerror", as: (@convention(c) (Int32) -> UnsafePointer<CChar>?).self),
                connackString: symbol("mosquitto_connack_string", as: (@convention(c) (Int32) -> UnsafePointer<CChar>?).self),
                reasonString: symbol("mosquitto_reason_string", as: (@convention(c) (Int32) -> UnsafePointer<CChar>?).self))
        }.mapError { failure in
            switch failure {
            case .notFound(let path, let reason):
                MQTTError("cannot load libmosquitto (\(path)): \(reason); install Debian's libmosquitto1, or set CAMFLOW_LIBMOSQUITTO to the library")
            case .missingSymbols(let path, let names):
                MQTTError("\(path) lacks \(names.joined(separator: ", ")): libmosquitto 2.0 or later is needed")
            }
        }
    }

    /// libmosquitto's text for a result code.
    static func describe(_ code: Int32) -> String {
        if code == MOSQ_ERR_ERRNO.rawValue { return String(cString: Glibc.strerror(errno)) }
        if case .success(let functions) = loaded, let text = functions.strerror(code) { return String(cString: text) }
        return "error \(code)"
    }

    /// The version, such as "2.0.11", or nil without the library.
    static var version: String? {
        guard case .success(let functions) = loaded else { return nil }
        var major: Int32 = 0, minor: Int32 = 0, revision: Int32 = 0
        _ = functions.libVersion(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }
}

/// Why an MQTT client could not be made or used.
public struct MQTTError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
