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
}
