/// "did you mean" hints for misspelt names.
enum Suggestions {
    /// The names in `candidates` closest to `word`, best first; at most three,
    /// and only those close enough to be a plausible typo.
    static func closest(to word: String, among candidates: [String]) -> [String] {
        // No name is that long: a long word (a hostile file's 4 MiB key) costs nothing to compare.
        guard word.utf8.count <= 128 else { return [] }
        let limit = max(2, word.count / 3)
        let lowered = word.lowercased()
        return candidates
            // The distance is at least the difference in lengths: those too far apart are not compared.
            .filter { abs($0.count - word.count) <= limit || ($0.hasPrefix(word) && word.count >= 3) }
            .map { (name: $0, distance: distance(lowered, $0.lowercased())) }
            .filter { $0.distance <= limit || ($0.name.hasPrefix(word) && word.count >= 3) }
            .sorted { ($0.distance, $0.name) < ($1.distance, $1.name) }
            .prefix(3)
            .map(\.name)
    }

    /// `"; did you mean 'queue'?"`, or empty.
    static func didYouMean(_ word: String, among candidates: [String]) -> String {
        let names = closest(to: word, among: candidates)
        guard !names.isEmpty else { return "" }
        return "; did you mean " + names.map { "'\($0)'" }.joined(separator: " or ") + "?"
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
