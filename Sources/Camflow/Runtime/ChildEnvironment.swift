import Foundation

/// The environment of every process camflow starts (an `exec` node's
/// child, the snapshot decoder): a few variables a program needs to find
/// its tools and speak the host's language, plus what the operator
/// declared. Never camflow's whole environment: the passwords and keys it
/// was started with stay with camflow (docs/SECURITY.md).
public enum ChildEnvironment {
    /// camflow's variables every child gets when they are set: the search
    /// path, the locale and the time zone. No HOME: a child that needs one
    /// is given it with `env` or `inherit-env`.
    public static let passedOn = ["PATH", "LANG", "LC_ALL", "TZ"]

    /// The environment of a child.
    /// - Parameters:
    ///   - declared: variables the operator set for the child; they win over camflow's.
    ///   - inheriting: names of camflow's variables the operator chose to pass on.
    ///   - parent: the environment passed from; camflow's own when nil.
    public static func minimal(declared: [String: String] = [:], inheriting: [String] = [],
                               from parent: [String: String]? = nil) -> [String: String] {
        let parent = parent ?? ProcessInfo.processInfo.environment
        var environment = declared
        for name in passedOn + inheriting where environment[name] == nil {
            if let value = parent[name] { environment[name] = value }
        }
        return environment
    }
}
