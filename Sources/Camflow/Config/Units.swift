/// Parsers for the units pipeline files use: durations (`250ms`, `5s`, `2m`,
/// `1h`, `7d`), sizes (`512KiB`, `64MiB`, `1GB`, `4096`) and rates
/// (`1MiB/s`). Each returns nil for text it does not understand; callers
/// turn that into an error that says what was expected.
public enum Units {
    /// Parses a duration. A bare number is seconds.
    public static func duration(_ text: String) -> Duration? {
        let (number, unit) = split(text)
        guard let value = number, value.isFinite, value >= 0 else { return nil }
        let seconds: Double
        switch unit {
        case "ns": seconds = value / 1e9
        case "us", "µs": seconds = value / 1e6
        case "ms": seconds = value / 1e3
        case "", "s": seconds = value
        case "m", "min": seconds = value * 60
        case "h": seconds = value * 3600
        case "d": seconds = value * 86400
        default: return nil
        }
        // About 100 years: far beyond any use, and its nanoseconds fit Int64.
        guard seconds <= 3.2e9 else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// Parses a size in bytes. Binary (`KiB`) and decimal (`KB`) units.
    public static func size(_ text: String) -> Int? {
        let (number, unit) = split(text)
        guard let value = number, value.isFinite, value >= 0 else { return nil }
        let multiplier: Double
        switch unit {
        case "", "B": multiplier = 1
        case "KiB", "K", "k": multiplier = 1024
        case "MiB", "M": multiplier = 1024 * 1024
        case "GiB", "G": multiplier = 1024 * 1024 * 1024
        case "TiB", "T": multiplier = 1024 * 1024 * 1024 * 1024
        case "KB", "kB": multiplier = 1000
        case "MB": multiplier = 1e6
        case "GB": multiplier = 1e9
        case "TB": multiplier = 1e12
        default: return nil
        }
        let bytes = value * multiplier
        guard bytes < 9e18, bytes == bytes.rounded() || unit != "" else { return nil }
        return Int(bytes.rounded())
    }

    /// Parses a byte rate such as `1MiB/s` or `500KB/s`; returns bytes per second.
    public static func rate(_ text: String) -> Double? {
        guard let slash = text.lastIndex(of: "/") else { return nil }
        let amount = String(text[..<slash]).trimmingSpaces
        let per = String(text[text.index(after: slash)...]).trimmingSpaces
        guard let bytes = size(amount), let period = duration(per.first?.isNumber == true ? per : "1" + per),
              period > .zero
        else { return nil }
        return Double(bytes) / period.seconds
    }

    /// Splits `12.5MiB` into (12.5, "MiB").
    private static func split(_ text: String) -> (Double?, String) {
        let trimmed = text.trimmingSpaces
        guard let end = trimmed.firstIndex(where: { !($0.isNumber || $0 == ".") }) else {
            return (Double(trimmed), "")
        }
        let number = Double(trimmed[..<end])
        let unit = String(trimmed[end...]).trimmingSpaces
        return (number, unit)
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    public var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }

    /// The duration in whole nanoseconds.
    public var nanoseconds: Int64 {
        let (s, attoseconds) = components
        return s * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s.removeFirst() }
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return String(s)
    }
}
