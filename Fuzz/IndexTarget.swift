import Camflow
import Foundation

/// The recordings index reader fed an index file's bytes (the first byte
/// says whether they start mid-line): every entry it keeps has finite
/// times and lengths, counts of at least zero, a path below the root, and
/// reads back, written again, with the same text fields and counts.
func fuzzIndex(_ bytes: UnsafeRawBufferPointer) {
    guard let first = bytes.first else { return }
    let entries = RecordingIndex.parse(Data(bytes.dropFirst()), startsMidLine: first & 1 == 1)
    for entry in entries {
        precondition(entry.wallStart.isFinite && entry.wallEnd.isFinite && entry.duration.isFinite && entry.duration >= 0,
                     "times that are not finite: \(entry)")
        precondition([entry.start, entry.end].allSatisfy { $0.map { $0.magnitude <= RecordingIndexEntry.maxMediaSeconds } ?? true },
                     "a media time beyond 2^63 ns: \(entry)")
        precondition(entry.keyframes >= 0 && entry.fragments >= 0 && entry.bytes >= 0, "a negative count: \(entry)")
        precondition(entry.pathIsContained, "a path leaving the root: \(entry.path.debugDescription)")
        // Six fraction digits are written: a time within a millionth of the era's end may round onto it.
        guard entry.wallStart.magnitude < RecordingIndexEntry.maxWallSeconds - 1 else { continue }
        guard let again = RecordingIndexEntry(jsonLine: entry.jsonLine) else {
            fatalError("an entry written again does not read back: \(entry.jsonLine.debugDescription)")
        }
        precondition(again.path == entry.path && again.stream == entry.stream && again.reason == entry.reason
                     && again.keyframes == entry.keyframes && again.fragments == entry.fragments && again.bytes == entry.bytes,
                     "an entry changed on its way through the index: \(entry) became \(again)")
    }
}
