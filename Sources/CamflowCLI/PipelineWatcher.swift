import Camflow
import Foundation
import Logging
import Synchronization
import UnixSignals

/// Reloads a running pipeline from its file: on SIGHUP always, and with
/// `--watch` when the file or a graph file it includes changes. An invalid
/// file is reported and the running graph stays as it is. `${VAR}` values
/// are those of the environment at start.
struct PipelineWatcher: Sendable {
    let path: String
    let registry: NodeRegistry
    let environment: [String: String]
    let pipeline: Pipeline
    let watch: Bool
    /// The files of the running graph, watched for changes.
    let files: [String]
    /// What the settling wait is measured on.
    var clock: any PipelineClock = SystemClock()
    /// After the system says a watched directory changed, the files are looked at
    /// again this much later; a change is acted on once two looks agree (the editor finished writing).
    static let settleInterval = Duration.milliseconds(100)

    func run() async {
        let (requests, request) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in hangups { request.yield("SIGHUP") }
            }
            // What was last loaded (or refused): a refused file is tried again only when it changes again.
            let loaded = Shared(FileSignature.of(files))
            var notices: FileChangeNotices?
            if watch {
                do {
                    notices = try FileChangeNotices()
                } catch {
                    printError("--watch: \(error); the file is reloaded on SIGHUP only")
                }
            }
            group.addTask { [notices] in
                for await reason in requests {
                    // Taken before reading: a save landing during the reload is seen as a change next time.
                    let before = FileSignature.of(loaded.value.files)
                    let files = reload(reason) ?? before.files
                    loaded.set(files == before.files ? before : FileSignature.of(files))
                    // A reload (on a change or SIGHUP) may have brought in files in other directories.
                    notices?.watch(files)
                }
            }
            if let notices {
                group.addTask {
                    notices.watch(files)
                    let (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
                    await withTaskGroup(of: Void.self) { watching in
                        watching.addTask { await notices.run { changed.yield() } }
                        watching.addTask {
                            var seen = FileSignature.of(files)
                            for await _ in changes {
                                // Settle: the files are looked at until two looks apart agree.
                                while true {
                                    do { try await clock.sleep(for: Self.settleInterval) } catch { return }
                                    let now = FileSignature.of(loaded.value.files)
                                    if now == seen {
                                        if now != loaded.value { request.yield("\(path) changed") }
                                        break
                                    }
                                    seen = now
                                }
                                // A directory moved or deleted is watched again by its name.
                                notices.watch(loaded.value.files)
                            }
                        }
                        await watching.next()
                        watching.cancelAll()
                    }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Loads, checks and applies the file; the files it is made of, or nil when it was refused.
    private func reload(_ reason: String) -> [String]? {
        guard let loaded = PipelineFile.read(path, registry: registry, environment: environment) else {
            printError("reload (\(reason)) refused: the running graph is unchanged")
            return nil
        }
        do {
            let diff = try pipeline.reload(to: loaded.graph)
            if diff.isEmpty { printError("reload (\(reason)): nothing changed") }
            return loaded.files
        } catch {
            printError("reload (\(reason)) refused: \(error)")
            return nil
        }
    }
}

/// A value two tasks share.
private final class Shared<Value: Sendable>: Sendable {
    private let box: Mutex<Value>
    init(_ value: Value) { box = Mutex(value) }
    var value: Value { box.withLock { $0 } }
    func set(_ value: Value) { box.withLock { $0 = value } }
}

/// What tells that files changed: size, modification time and inode of each.
struct FileSignature: Equatable, Sendable {
    var files: [String]
    var stamps: [[Int]]

    static func of(_ files: [String]) -> FileSignature {
        FileSignature(files: files, stamps: files.map { file in
            var info = stat()
            guard stat(file, &info) == 0 else { return [] }
            return [Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), Int(info.st_ino)]
        })
    }

    mutating func update(_ files: [String]) { self = .of(files) }
}
