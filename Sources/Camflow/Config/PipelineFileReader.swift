#if canImport(Glibc)
import Glibc
#endif

/// A pipeline file's text, and whether its lines may be quoted in errors.
public struct PipelineSource: Sendable {
    public var text: String
    /// Why the file's lines are never quoted in errors (it is not a file of
    /// the pipeline's folder), or nil.
    public var notQuoted: String?

    public init(text: String, notQuoted: String? = nil) {
        self.text = text
        self.notQuoted = notQuoted
    }
}

/// Reads pipeline files (the one run and the graphs it includes) as
/// untrusted input: regular files only (never a FIFO or a device, which
/// would block or never end), at most ``maxFileBytes`` each, checked before
/// they are read whole, UTF-8 text without NUL bytes.
///
/// The pipeline's folder is the directory the pipeline file is named in,
/// links resolved. A file whose real path (links resolved, as opened) lies
/// outside it — the pipeline file swapped for a link to `/etc/shadow`, an
/// include of `../../secrets.yaml` — is still loaded, but no line of it is
/// ever quoted in an error: errors give its name, line and column only.
public struct PipelineFileReader: Sendable {
    /// The largest pipeline file read: hand-written pipelines are a few KiB.
    public static let maxFileBytes = 4 << 20

    /// The real path of the pipeline's folder; nil quotes every file.
    public let folder: String?

    /// The reader for the pipeline in `pipelineFile`.
    public init(pipelineFile: String) {
        let slash = pipelineFile.lastIndex(of: "/")
        let directory = slash.map { $0 == pipelineFile.startIndex ? "/" : String(pipelineFile[..<$0]) } ?? "."
        folder = Self.realPath(directory)
    }

    /// A reader that quotes every file (for tests and library users without a folder).
    public init(folder: String?) {
        self.folder = folder
    }

    /// The file's text.
    /// - Throws: ``ConfigError`` (without a location unless it points into
    ///   the file): missing, not a regular file, too large, not UTF-8, a NUL byte.
    public func read(_ path: String) throws(ConfigError) -> PipelineSource {
        // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else {
            let reason = errno == ENOENT ? "no such file" : String(cString: strerror(errno))
            throw ConfigError("cannot read pipeline file '\(path)': \(reason)", at: nil)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ConfigError("cannot read pipeline file '\(path)': \(String(cString: strerror(errno)))", at: nil)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigError("pipeline file '\(path)' is not a regular file (a directory, device or pipe): refused", at: nil)
        }
        guard info.st_size <= Self.maxFileBytes else {
            throw ConfigError("pipeline file '\(path)' is \(info.st_size) bytes; pipeline files are at most "
                                + "\(Self.maxFileBytes >> 20) MiB: refused before reading it", at: nil)
        }
        // The file may grow after fstat: never more than the limit is read.
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else {
                throw ConfigError("cannot read pipeline file '\(path)': \(String(cString: strerror(errno)))", at: nil)
            }
            if count == 0 { break }
            filled += count
            if filled == bytes.count, filled <= Self.maxFileBytes { bytes += [UInt8](repeating: 0, count: 4096) }
        }
        guard filled <= Self.maxFileBytes else {
            throw ConfigError("pipeline file '\(path)' grew beyond \(Self.maxFileBytes >> 20) MiB while it was read: refused", at: nil)
        }
        bytes.removeSubrange(filled...)
        let text = try Self.checkedText(bytes, path: path)
        return PipelineSource(text: text, notQuoted: quotingRefusal(fd: fd, path: path))
    }

    /// The bytes of `path` as text, or where they are not text.
    public static func checkedText(_ bytes: [UInt8], path: String) throws(ConfigError) -> String {
        if let nul = bytes.firstIndex(of: 0) {
            let (line, column) = position(of: nul, in: bytes)
            throw ConfigError("\(path):\(line):\(column): a NUL byte: pipeline files are UTF-8 text", at: nil)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let bad = firstInvalidUTF8(bytes)
            let (line, column) = position(of: bad, in: bytes)
            throw ConfigError("\(path):\(line):\(column): not UTF-8 text (byte \(bad)): pipeline files are UTF-8 text", at: nil)
        }
        return text
    }

    /// Line and column (1-based, in bytes) of byte `offset`.
    private static func position(of offset: Int, in bytes: [UInt8]) -> (Int, Int) {
        let before = bytes[..<offset]
        let line = before.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
        let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        return (line, offset - lineStart + 1)
    }

    /// The offset of the first byte that does not decode.
    private static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while case .valid(let scalar) = parser.parseScalar(from: &iterator) { offset += scalar.count }
        return offset
    }

    /// Why the opened file's lines must not be quoted, or nil.
    private func quotingRefusal(fd: Int32, path: String) -> String? {
        guard let folder else { return nil }
        guard let real = Self.realPath("/proc/self/fd/\(fd)", link: true) ?? Self.realPath(path) else {
            return "'\(path)' could not be resolved"
        }
        let inside = folder == "/" ? real.hasPrefix("/") : real.hasPrefix(folder + "/")
        return inside ? nil : "'\(path)' is \(real), outside the pipeline's folder \(folder)"
    }

    /// `path` with every link resolved; for `link`, the target of the link itself.
    static func realPath(_ path: String, link: Bool = false) -> String? {
        if link {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(path, &buffer, Int(PATH_MAX))
            guard count > 0 else { return nil }
            return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
