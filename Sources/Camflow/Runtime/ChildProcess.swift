#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A child process started with `posix_spawn`, holding nothing of camflow's
/// but what it is given: stdin, stdout and stderr are pipes to camflow and
/// every other descriptor is closed in it (camflow's sockets, files and the
/// pipes of other children), its signals are at their defaults (camflow
/// ignores SIGPIPE; a child should not inherit that), it leads a process
/// group of its own, and its environment is the one passed (see
/// ``ChildEnvironment``). It is reaped exactly once, and never signalled
/// after: a signal never reaches a process that took its number.
public final class ChildProcess: Sendable {
    /// How a child ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        public var description: String
    }

    public let pid: Int32
    /// Camflow's ends of the child's standard streams (close-on-exec, blocking),
    /// closed when this is released; stdin earlier by ``closeStdin()``.
    public let stdin: Int32
    public let stdout: Int32
    public let stderr: Int32
    /// Set once the child has exited, before it is reaped.
    private let ended = Mutex(false)
    /// How it ended, once reaped.
    private let termination = Mutex<Termination?>(nil)
    private let stdinOpen = Mutex(true)

    /// Starts `executable` (a path; no search) with `arguments` (the program's
    /// name first excluded) and exactly `environment`.
    public init(executable: String, arguments: [String], environment: [String: String]) throws(SpawnFailed) {
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        guard pipe(&input) == 0 else { throw SpawnFailed(description: Self.errorText("pipe")) }
        guard pipe(&output) == 0 else {
            Self.close(input)
            throw SpawnFailed(description: Self.errorText("pipe"))
        }
        guard pipe(&errors) == 0 else {
            Self.close(input + output)
            throw SpawnFailed(description: Self.errorText("pipe"))
        }
        // pipe2 is not imported: the flag is set at once, for children spawned by other means.
        for fd in input + output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        // Everything else camflow holds, whether or not it was opened close-on-exec.
        if let closeFrom = Self.addCloseFrom {
            _ = closeFrom(&actions, 3)
        } else {
            for fd in Self.openDescriptors() where fd >= 3 { posix_spawn_file_actions_addclose(&actions, fd) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv + [nil], envp + [nil])
        Self.close([input[0], output[1], errors[1]])
        guard result == 0 else {
            Self.close([input[1], output[0], errors[0]])
            throw SpawnFailed(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        stdin = input[1]
        stdout = output[0]
        stderr = errors[0]
    }

    deinit {
        closeStdin()
        Self.close([stdout, stderr])
    }

    /// Closes camflow's end of the child's stdin (the child reads its end); once.
    public func closeStdin() {
        stdinOpen.withLock { open in
            guard open else { return }
            open = false
            _ = Glibc.close(stdin)
        }
    }

    /// Sends `signal` to the child's process group, unless it has already exited.
    public func signalGroup(_ signal: Int32) {
        ended.withLock { ended in
            guard !ended else { return }
            kill(-pid, signal)
        }
    }

    /// Whether the child has exited (it is not reaped: ``wait()`` does that).
    public var hasExited: Bool {
        if ended.withLock({ $0 }) { return true }
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return true }
        // With WNOHANG and nothing to report, the kernel leaves si_pid zero.
        let exited = withUnsafeBytes(of: &info) { $0.load(fromByteOffset: 16, as: Int32.self) } == pid
        if exited { ended.withLock { $0 = true } }
        return exited
    }

    /// Blocks until the child exits, then reaps it; later calls return the same.
    public func wait() -> Termination {
        termination.withLock { termination in
            if let termination { return termination }
            // Waited for without reaping first: until `ended` is set the pid stays this child's.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
            ended.withLock { $0 = true }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            // WIFEXITED and friends are macros Swift does not import.
            let signal = status & 0x7F
            let ending: Termination = signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
            termination = ending
            return ending
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift does not import.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32)? = {
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            return nil
        }
        return unsafeBitCast(address, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32).self)
    }()

    /// The descriptors open in camflow now.
    private static func openDescriptors() -> [Int32] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        let own = dirfd(directory)
        var descriptors: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = Int32(name), fd != own { descriptors.append(fd) }
        }
        return descriptors
    }

    private static func close(_ descriptors: [Int32]) {
        for fd in descriptors where fd >= 0 { _ = Glibc.close(fd) }
    }

    private static func errorText(_ call: String) -> String { "\(call): \(String(cString: strerror(errno)))" }
}
