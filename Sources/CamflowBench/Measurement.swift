import CamflowCLI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A benchmark that could not run, said in words.
struct BenchmarkError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// One whole process, run to its end and measured as the kernel counts it.
struct ProcessMeasurement {
    var wallSeconds: Double
    var cpuSeconds: Double
    var peakResidentKiB: Int

    /// Runs `arguments` (the first is looked up in PATH, or is a path) with
    /// its output discarded, under GNU time, which reports the CPU time and
    /// the peak memory of that child alone. (A child this process forks
    /// itself would count this process's memory as its own peak: the kernel
    /// keeps the high-water mark of the address space it had before exec.)
    /// Wall time is this process's clock around the run.
    static func run(_ arguments: [String]) throws -> ProcessMeasurement {
        guard let executable = arguments.first.flatMap(BenchTools.which) else {
            throw BenchmarkError(message: "\(arguments.first ?? "?") is not installed")
        }
        guard let time = BenchTools.which("/usr/bin/time") else {
            throw BenchmarkError(message: "GNU time is needed to measure a process (apt-get install -y time)")
        }
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-time-\(getpid())").path
        defer { unlink(report) }
        let command = [time, "-f", "%U %S %M", "-o", report, executable] + arguments.dropFirst()
        let clock = ContinuousClock()
        let start = clock.now
        let status = try spawnAndWait(command)
        let wall = (clock.now - start).seconds
        guard status == 0 else {
            throw BenchmarkError(message: "\(arguments.joined(separator: " ")) failed (wait status \(status))")
        }
        let fields = ((try? String(contentsOfFile: report, encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isWhitespace).suffix(3).compactMap { Double($0) }
        guard fields.count == 3 else { throw BenchmarkError(message: "GNU time wrote no report for \(executable)") }
        return ProcessMeasurement(wallSeconds: wall, cpuSeconds: fields[0] + fields[1], peakResidentKiB: Int(fields[2]))
    }

    /// Starts `command` with stdin, stdout and stderr on /dev/null and waits; returns the wait status.
    private static func spawnAndWait(_ command: [String]) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw BenchmarkError(message: "cannot start \(command[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw BenchmarkError(message: "waitpid failed: \(String(cString: strerror(errno)))") }
        }
        return status
    }
}

/// CPU time (user + system) of this process or of its waited-for children.
enum CPUTime {
    static func now() -> Double { usage(RUSAGE_SELF) }

    /// Sleeps `duration` and returns the wall and CPU seconds (this process) it took.
    static func measure(_ duration: Duration) async throws -> (wallSeconds: Double, cpuSeconds: Double) {
        let cpuBefore = now()
        let clock = ContinuousClock()
        let start = clock.now
        try await Task.sleep(for: duration)
        return ((clock.now - start).seconds, now() - cpuBefore)
    }

    private static func usage(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// Tools and media the benchmarks share.
enum BenchTools {
    /// `tool` as found in PATH (or as given, when it holds a slash).
    static func which(_ tool: String) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// The 20 s 1440p clip the live benchmarks stream: `given`, or made with
    /// ffmpeg on first use.
    static func clip(_ given: String?) throws -> String {
        if let given { return given }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-1440p.mp4").path
        if !FileManager.default.fileExists(atPath: path) {
            printError("making \(path) with ffmpeg (once)...")
            try ffmpeg([
                "-f", "lavfi", "-i", "testsrc2=size=2560x1440:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", "20", "-c:v", "libx264", "-profile:v", "main", "-preset", "ultrafast", "-b:v", "4M",
                "-maxrate", "4M", "-bufsize", "8M", "-g", "50", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k",
                "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", path,
            ], making: path)
        }
        return path
    }

    /// The long file the MP4 benchmark reads: the clip looped to 600 s (about
    /// 317 MB), made on first use.
    static func longFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-bench-1440p-600s.mp4").path
        if !FileManager.default.fileExists(atPath: path) {
            let clip = try clip(nil)
            printError("making \(path) with ffmpeg (once)...")
            try ffmpeg(["-stream_loop", "29", "-i", clip, "-c", "copy",
                        "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", path], making: path)
        }
        return path
    }

    private static func ffmpeg(_ arguments: [String], making path: String) throws {
        guard which("ffmpeg") != nil else {
            throw BenchmarkError(message: "ffmpeg is needed to make the benchmark media (apt-get install -y ffmpeg), or pass --media FILE")
        }
        do {
            _ = try ProcessMeasurement.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"] + arguments)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw BenchmarkError(message: "ffmpeg could not make \(path): \(error)")
        }
    }
}
