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

    /// A name safe as one path component.
    static func sanitize(_ name: String) -> String {
        let cleaned = String(name.unicodeScalars.map { scalar -> Character in
            let allowed = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "." || scalar == "_" || scalar == "-"
            return allowed ? Character(scalar) : "_"
        })
        return cleaned.isEmpty || cleaned.allSatisfy({ $0 == "." }) ? "_" : cleaned
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
