#if canImport(Glibc)
import Glibc
#endif

/// Reading files named by something other than the operator (an index a
/// process below the root can edit) without leaving the root: no component
/// below it is followed if it is a symbolic link.
public enum SafeOpen {
    /// Opens `relative` (slash-separated, below `root`) read-only: every
    /// directory with `O_DIRECTORY | O_NOFOLLOW` from the one before it, the
    /// file with `O_NOFOLLOW | O_NONBLOCK` (a FIFO never blocks the open),
    /// and only a regular file is returned. An absolute path, `..`, `.` or
    /// an empty component is refused (`EINVAL`); a link anywhere below the
    /// root fails with `ELOOP` or `ENOTDIR`. The caller closes the descriptor.
    public static func regularFile(root: String, relative: String) throws(SafeFileError) -> Int32 {
        let components = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !relative.hasPrefix("/"), !relative.contains("\0"), let name = components.last,
              components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw SafeFileError(operation: "open", path: relative, errno: EINVAL)
        }
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SafeFileError(operation: "open directory", path: root, errno: errno) }
        var path = root
        for component in components.dropLast() {
            path += "/" + component
            let next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            close(fd)
            guard next >= 0 else { throw SafeFileError(operation: "open directory", path: path, errno: failure) }
            fd = next
        }
        path += "/" + name
        let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        let failure = errno
        close(fd)
        guard file >= 0 else { throw SafeFileError(operation: "open", path: path, errno: failure) }
        var info = stat()
        guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(file)
            throw SafeFileError(operation: "open", path: path, errno: EINVAL)
        }
        return file
    }

    /// Whether `relative` below `root` is a regular file reached without links.
    public static func isRegularFile(root: String, relative: String) -> Bool {
        guard let fd = try? regularFile(root: root, relative: relative) else { return false }
        close(fd)
        return true
    }
}

/// Answers "is this a regular file below the root, reached without links?"
/// for many paths at the cost of one `fstatat` each: every directory is
/// opened once (component-wise, without following links) and kept open
/// until the value is dropped.
public final class RegularFileProbe {
    private let root: String
    /// Directory descriptors by relative path ("" is the root); -1 where it cannot be opened safely.
    private var directories: [String: Int32] = [:]

    public init(root: String) {
        self.root = root
    }

    deinit {
        for fd in directories.values where fd >= 0 { close(fd) }
    }

    public func isRegularFile(_ relative: String) -> Bool {
        var components = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !relative.hasPrefix("/"), !relative.contains("\0"), let name = components.popLast(),
              !name.isEmpty, name != ".", name != ".." else { return false }
        let directory = self.directory(components)
        guard directory >= 0 else { return false }
        var info = stat()
        return fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    private func directory(_ components: [String]) -> Int32 {
        let key = components.joined(separator: "/")
        if let fd = directories[key] { return fd }
        let fd: Int32
        if let last = components.last {
            let parent = directory(Array(components.dropLast()))
            fd = parent >= 0 && !last.isEmpty && last != "." && last != ".."
                ? openat(parent, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1
        } else {
            fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        directories[key] = fd
        return fd
    }
}
