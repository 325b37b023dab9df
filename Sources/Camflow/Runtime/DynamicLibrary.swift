#if canImport(Glibc)
import Glibc
#endif

/// A C library loaded when a node first needs it (`dlopen`) rather than
/// linked: libzmq and libmosquitto bring dozens of libraries (TLS, Kerberos,
/// ...) whose mapping would cost every camflow command, and a pipeline that
/// does not use them runs on a machine without them.
public enum DynamicLibrary {
    /// Why a library could not be used.
    public enum LoadFailure: Error, Sendable {
        /// `dlopen` failed: not installed, or not a library.
        case notFound(path: String, reason: String)
        /// The library lacks functions camflow calls: too old.
        case missingSymbols(path: String, names: [String])
    }

    /// Looks up functions by name, remembering the ones missing.
    public struct SymbolResolver {
        fileprivate let handle: UnsafeMutableRawPointer
        fileprivate var missing: [String] = []

        /// The function `name` as `type` (a `@convention(c)` function type).
        public mutating func callAsFunction<T>(_ name: String, as type: T.Type) -> T {
            guard let address = dlsym(handle, name) else {
                missing.append(name)
                // Never called: a load with a missing symbol fails as a whole.
                return unsafeBitCast(UnsafeRawPointer(bitPattern: 1)!, to: type)
            }
            return unsafeBitCast(address, to: type)
        }
    }

    /// Opens the library named by the environment variable `override` when it
    /// is set and not empty, else `name`, and resolves its functions with
    /// `resolve`. The library stays loaded for the life of the process.
    public static func load<Functions>(_ name: String, override: String,
                                       _ resolve: (inout SymbolResolver) -> Functions) -> Result<Functions, LoadFailure> {
        let configured = getenv(override).map { String(cString: $0) } ?? ""
        let path = configured.isEmpty ? name : configured
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            return .failure(.notFound(path: path, reason: dlerror().map { String(cString: $0) } ?? "unknown error"))
        }
        var resolver = SymbolResolver(handle: handle)
        let functions = resolve(&resolver)
        guard resolver.missing.isEmpty else { return .failure(.missingSymbols(path: path, names: resolver.missing)) }
        return .success(functions)
    }
}
