#if canImport(Glibc)
import Glibc
#endif

/// A file operation that failed: what, on which path, and the `errno`.
public struct SafeFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Int32

    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String {
        "cannot \(operation) '\(path)': \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// A directory under a root, held open by descriptor, in which files are
/// created and published without following symbolic links and without
/// replacing anything.
///
/// Whoever can write below the root (another process, a planted link) must
/// not be able to make camflow truncate or overwrite a file elsewhere: every
/// component below the root is opened with `O_NOFOLLOW`, a file being
/// written is created with `O_EXCL | O_NOFOLLOW`, and a finished file is
/// published with `linkat` (which fails on an existing name) rather than
/// `rename` (which replaces it). The root itself is the operator's choice and
/// may be a link (to another disk, say).
public struct SafeDirectory: Sendable {
    public let fd: Int32
    /// The directory's path, for messages and the index.
    public let path: String

    /// Opens `relative` below `root`, creating what is missing (the root included).
    public static func open(root: String, relative: [String]) throws(SafeFileError) -> SafeDirectory {
        try createPath(root)
        var fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SafeFileError(operation: "open directory", path: root, errno: errno) }
        var path = root
        for component in relative {
            path += "/" + component
            if mkdirat(fd, component, 0o755) != 0, errno != EEXIST {
                let failure = errno
                Glibc.close(fd)
                throw SafeFileError(operation: "create directory", path: path, errno: failure)
            }
            let next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            Glibc.close(fd)
            guard next >= 0 else { throw SafeFileError(operation: "open directory", path: path, errno: failure) }
            fd = next
        }
        return SafeDirectory(fd: fd, path: path)
    }

    /// `mkdir -p` of the root, which the operator chose: links in it are followed.
    static func createPath(_ root: String) throws(SafeFileError) {
        var path = root.hasPrefix("/") ? "" : "."
        for component in root.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o755) != 0, errno != EEXIST {
                throw SafeFileError(operation: "create directory", path: path, errno: errno)
            }
        }
    }

    /// Whether anything (a file, a link, a directory) has this name.
    public func contains(_ name: String) -> Bool {
        var info = stat()
        return fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// Creates `name` for writing; nil when the name is taken (by anything, a link included).
    public func createExclusive(_ name: String) throws(SafeFileError) -> Int32? {
        let file = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if file >= 0 { return file }
        if errno == EEXIST { return nil }
        throw SafeFileError(operation: "create", path: path + "/" + name, errno: errno)
    }

    /// Gives the written file `partial` its final name: `stem.mp4`, or
    /// `stem-1.mp4`, `stem-2.mp4`... when taken. Never replaces a file.
    public func publish(_ partial: String, stem: String) throws(SafeFileError) -> String {
        for number in 0..<10_000 {
            let name = number == 0 ? stem + ".mp4" : "\(stem)-\(number).mp4"
            if linkat(fd, partial, fd, name, 0) == 0 {
                unlinkat(fd, partial, 0)
                fsync(fd)
                return path + "/" + name
            }
            guard errno == EEXIST else { throw SafeFileError(operation: "rename", path: path + "/" + partial, errno: errno) }
        }
        throw SafeFileError(operation: "rename", path: path + "/" + partial, errno: EEXIST)
    }

    public func remove(_ name: String) { unlinkat(fd, name, 0) }

    public func close() { Glibc.close(fd) }
}
