#if canImport(Glibc)
import Glibc
#endif

/// Where a recording goes: a template with `{stream}`, `{node}` and strftime
/// fields, such as `recordings/{stream}/%Y-%m-%d/%H%M%S.mp4`. Pure.
///
/// The root is the template's directory part before its first field; stream
/// and node names are reduced to `[A-Za-z0-9._-]` (and never `.` or `..`),
/// so no stream name can lead a file outside the root.
struct RecordingPath: Sendable {
    let template: String
    /// The directory every recording of this template lies in.
    let root: String

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    init(_ template: String) throws(Invalid) {
        guard template.hasSuffix(".mp4") else { throw Invalid(description: "the path template must end in .mp4") }
        self.template = template
        let firstField = template.firstIndex { $0 == "{" || $0 == "%" } ?? template.endIndex
        let staticPart = template[..<firstField]
        if let slash = staticPart.lastIndex(of: "/") {
            root = String(staticPart[..<slash])
        } else {
            root = "."
        }
        guard !root.split(separator: "/").contains(".."), !root.isEmpty else {
            throw Invalid(description: "the path template's root '\(root)' may not contain '..'")
        }
    }

    /// The longest name ``sanitize(_:)`` returns: a path component may
    /// have 255 bytes, and a stream name from a ZeroMQ header 256.
    static let maxNameBytes = 96

    /// A name safe as one path component. A longer name is cut and ends in a
    /// hash of the whole, so two long names that share a beginning stay apart.
    static func sanitize(_ name: String) -> String {
        var cleaned = String(name.unicodeScalars.map { scalar -> Character in
            let allowed = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "." || scalar == "_" || scalar == "-"
            return allowed ? Character(scalar) : "_"
        })
        if cleaned.utf8.count > maxNameBytes {
            // FNV-1a, 64 bits: stable across runs, unlike Hasher.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let suffix = String(hash, radix: 16)
            cleaned = String(cleaned.prefix(maxNameBytes - suffix.count - 1)) + "-" + suffix
        }
        return cleaned.isEmpty || cleaned.allSatisfy({ $0 == "." }) ? "_" : cleaned
    }

    /// The (sanitized) stream name of a file at `relative` (below the root),
    /// when the template gives the stream a directory of its own; nil
    /// otherwise. Used for files recovered after a crash.
    func stream(ofRelative relative: String) -> String? {
        let rootDepth = root == "." ? 0 : root.split(separator: "/").count
        let fields = template.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.dropFirst(rootDepth)
        guard let index = fields.firstIndex(of: "{stream}") else { return nil }
        let components = relative.split(separator: "/", omittingEmptySubsequences: true)
        let position = index - fields.startIndex
        guard components.count == fields.count, position < components.count - 1 else { return nil }
        return String(components[position])
    }

    /// The path for a recording of `stream` by `node` starting at `time` (seconds since 1970, local time).
    func path(stream: String, node: String, time: Int) -> String {
        var text = template
            .replacingAll("{stream}", with: Self.sanitize(stream))
            .replacingAll("{node}", with: Self.sanitize(node))
        var seconds = time_t(time)
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [Int8](repeating: 0, count: 1024)
        let count = strftime(&buffer, buffer.count, text, &parts)
        if count > 0 {
            text = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        // Belt and braces: drop `.` components and any `..` a template field could yield.
        let components = text.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
            .map { $0 == ".." ? "_" : String($0) }
        let rootDepth = root == "." ? 0 : root.split(separator: "/").count
        let relative = components.dropFirst(rootDepth)
        let prefix = text.hasPrefix("/") ? "/" : ""
        return (root == "." ? "" : (root.hasPrefix("/") ? root : prefix + root) + "/") + relative.joined(separator: "/")
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
