import SafeFiles

/// The recordings root's ``SafeFiles/SafeDirectory`` (shared with the web
/// sink's readers), its failures told as ``RecordingError``s, which the
/// recorders report and act on (a full disk runs retention).
struct SafeDirectory {
    private let base: SafeFiles.SafeDirectory
    var fd: Int32 { base.fd }
    /// The directory's path, for messages and the index.
    var path: String { base.path }

    /// Opens `relative` below `root`, creating what is missing.
    static func open(root: String, relative: [String]) throws(RecordingError) -> SafeDirectory {
        do {
            return SafeDirectory(base: try SafeFiles.SafeDirectory.open(root: root, relative: relative))
        } catch {
            throw RecordingError(error)
        }
    }

    /// Whether anything (a file, a link, a directory) has this name.
    func contains(_ name: String) -> Bool { base.contains(name) }

    /// Creates `name` for writing; nil when the name is taken (by anything, a link included).
    func createExclusive(_ name: String) throws(RecordingError) -> Int32? {
        do { return try base.createExclusive(name) } catch { throw RecordingError(error) }
    }

    /// Gives the written file `partial` its final name (`stem.mp4`, `stem-1.mp4`...); never replaces a file.
    func publish(_ partial: String, stem: String) throws(RecordingError) -> String {
        do { return try base.publish(partial, stem: stem) } catch { throw RecordingError(error) }
    }

    func remove(_ name: String) { base.remove(name) }

    func close() { base.close() }
}

extension RecordingError {
    init(_ error: SafeFileError) {
        self.init(operation: error.operation, path: error.path, errno: error.errno)
    }
}
