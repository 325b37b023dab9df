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
    /// Camflow's ends of the child's standard streams (close-on-exec, blocking;
    /// exec and the snapshot decoder hand them to NIO, which makes them non-blocking),
    /// closed when this is released (stdin earlier by ``closeStdin()``)
    /// unless ``takeDescriptors()`` handed them on.
    public let stdin: Int32
    public let stdout: Int32
    public let stderr: Int32
    private let state = Mutex(State())
    /// Fired once the child has exited (before it is reaped).
    private let exitSignal = OneShotSignal()

    private struct State {
        var waiterStarted = false
        var exited = false
        /// How it ended, once reaped; after that its pid is not ours to signal.
        var termination: Termination?
        /// Whether the descriptors are still this object's to close.
        var ownsDescriptors = true
    }

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
        guard state.withLock({ $0.ownsDescriptors }) else { return }
        Self.close([stdin, stdout, stderr])
    }

    /// Hands camflow's ends of the child's stdin, stdout and stderr to the
    /// caller (an event loop, say), who closes them from now on.
    public func takeDescriptors() -> (stdin: Int32, stdout: Int32, stderr: Int32) {
        state.withLock { $0.ownsDescriptors = false }
        return (stdin, stdout, stderr)
    }

    /// Sends `signal` to the child's process group, unless the child has been
    /// reaped (until then its pid, and so the group's id, stays the child's,
    /// even after it exited: what it started is reached too).
    public func signalGroup(_ signal: Int32) {
        state.withLock { state in
            guard state.termination == nil else { return }
            kill(-pid, signal)
        }
    }

    /// Whether the child has exited (it is not reaped: ``reap()`` does that).
    public var hasExited: Bool {
        if state.withLock({ $0.exited }) { return true }
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return true }
        // With WNOHANG and nothing to report, the kernel leaves si_pid zero.
        let exited = withUnsafeBytes(of: &info) { $0.load(fromByteOffset: 16, as: Int32.self) } == pid
        if exited { state.withLock { $0.exited = true } }
        return exited
    }

    /// Returns once the child has exited, without reaping it, or at once when
    /// the task is cancelled. The wait blocks one thread of its own
    /// (``BlockingIOThread``) in `waitid`, never the cooperative pool, and
    /// one per child however many wait.
    public func exited() async {
        let start = state.withLock { state -> Bool in
            // Reaped already (``reap()``): its pid may be another process's by now.
            guard state.termination == nil else { return false }
            defer { state.waiterStarted = true }
            return !state.waiterStarted
        }
        if state.withLock({ $0.termination != nil }) { return }
        if start {
            // Unstructured: the wait outlives a cancelled caller, and ends when the child does.
            Task { [self, pid] in
                await BlockingIOThread.run(name: "camflow-child-\(pid)") {
                    var info = siginfo_t()
                    // Without reaping: until `termination` is set the pid stays this child's.
                    while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
                }
                state.withLock { $0.exited = true }
                exitSignal.fire()
            }
        }
        await exitSignal.wait()
    }

    /// Reaps the child once it has exited and says how it ended; nil while it
    /// runs. Later calls return the same.
    public func reap() -> Termination? {
        state.withLock { state in
            if let termination = state.termination { return termination }
            var status: Int32 = 0
            var result: Int32
            repeat { result = waitpid(pid, &status, WNOHANG) } while result == -1 && errno == EINTR
            guard result == pid else { return nil }
            // WIFEXITED and friends are macros Swift does not import.
            let signal = status & 0x7F
            let ending: Termination = signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
            state.exited = true
            state.termination = ending
            return ending
        }
    }

    /// Stops the child's whole process group and reaps the child: SIGTERM,
    /// up to `grace` on `clock` for the child to exit, then SIGKILL (to the
    /// group even when the child went: what it started goes too). A child
    /// that already exited is only reaped. Runs to its end even when the
    /// calling task is cancelled: a stop on cancellation still gives the
    /// child its grace.
    public func stop(grace: Duration, clock: any PipelineClock) async -> Termination {
        await Task { [self] in
            if let termination = reap() { return termination }
            if !hasExited {
                signalGroup(SIGTERM)
                await withTaskGroup(of: Void.self) { race in
                    race.addTask { await self.exited() }
                    race.addTask { try? await clock.sleep(for: grace) }
                    await race.next()
                    race.cancelAll()
                }
            }
            signalGroup(SIGKILL)
            await exited()
            return reap() ?? .signalled(SIGKILL)
        }.value
    }

    /// Waits for the child to exit, then reaps it; runs to its end even when
    /// the calling task is cancelled.
    public func termination() async -> Termination {
        await Task { [self] in
            await exited()
            return reap() ?? .signalled(SIGKILL)
        }.value
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

    fileprivate static func errorText(_ call: String) -> String { "\(call): \(String(cString: strerror(errno)))" }
}
