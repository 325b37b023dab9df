#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Camflow
import Synchronization

/// Tells when something changed in the directories of a set of files,
/// through inotify: the pipeline file's watch waits on the system rather
/// than looking at the files on a timer. Directories are watched, not the
/// files, because editors and `kubectl` replace a file by renaming another
/// over it, which a watch on the file itself would not see. Any change in
/// such a directory is a notice; the caller compares the files' signatures
/// to tell whether one of its files changed.
final class FileChangeNotices: Sendable {
    private let notify: Int32
    /// A pipe whose write end ``run(_:)``'s poll also waits on: written to stop it.
    private let wake: (read: Int32, write: Int32)
    /// Watched directories and their watch descriptors.
    private let watched = Mutex<[String: Int32]>([:])

    /// What failed when setting up the watch, with the system's reason.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init() throws {
        #if os(Linux)
        notify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard notify >= 0 else { throw Failure(description: "cannot watch files (inotify): \(String(cString: strerror(errno)))") }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            let reason = String(cString: strerror(errno))
            close(notify)
            throw Failure(description: "cannot watch files (pipe): \(reason)")
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        wake = (ends[0], ends[1])
        #else
        throw Failure(description: "watching files needs Linux (inotify)")
        #endif
    }

    deinit {
        close(notify)
        close(wake.read)
        close(wake.write)
    }

    /// Watches the directories of `files` (and no others from now on). Each
    /// is added again every time: a directory swapped for another of the
    /// same name (moved or deleted and made again) gets a watch on what the
    /// name is now, and the old one's move or deletion is itself a notice.
    func watch(_ files: [String]) {
        #if os(Linux)
        let directories = Set(files.map(Self.directory(of:)))
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB
                          | IN_MOVE_SELF | IN_DELETE_SELF)
        let failures = watched.withLock { watched -> [String] in
            for (directory, descriptor) in watched where !directories.contains(directory) {
                inotify_rm_watch(notify, descriptor)
                watched[directory] = nil
            }
            var failures: [String] = []
            for directory in directories {
                let descriptor = inotify_add_watch(notify, directory, mask)
                if descriptor >= 0 {
                    watched[directory] = descriptor
                } else if errno != ENOENT {
                    // A directory that does not exist (yet) is not watched: the file's signature says it is missing.
                    failures.append("--watch: cannot watch \(directory): \(String(cString: strerror(errno)))")
                }
            }
            return failures
        }
        for failure in failures { printError(failure) }
        #endif
    }

    /// Calls `changed` after each batch of changes until the task is
    /// cancelled. Waits in poll(2) on a thread of its own.
    func run(_ changed: @escaping @Sendable () -> Void) async {
        await withTaskCancellationHandler {
            await BlockingIOThread.run(name: "camflow-watch") {
                self.loop(changed)
            }
        } onCancel: {
            var byte: UInt8 = 1
            _ = write(wake.write, &byte, 1)
        }
    }

    private func loop(_ changed: () -> Void) {
        var descriptors = [pollfd(fd: notify, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let ready = poll(&descriptors, nfds_t(descriptors.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                printError("--watch: waiting for changes failed: \(String(cString: strerror(errno))); the file is reloaded on SIGHUP only")
                return
            }
            if descriptors[1].revents != 0 { return }
            guard descriptors[0].revents != 0 else { continue }
            // The events themselves are not needed: drain them, then say that something changed.
            var any = false
            while true {
                let count = buffer.withUnsafeMutableBytes { read(notify, $0.baseAddress, $0.count) }
                if count > 0 { any = true; continue }
                if count < 0 && errno == EINTR { continue }
                break
            }
            if any { changed() }
        }
    }

    private static func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return slash == file.startIndex ? "/" : String(file[..<slash])
    }
}
