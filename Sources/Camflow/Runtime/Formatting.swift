extension Double {
    /// Fixed-point text without Foundation: `1.5`, `0.333`, `12`.
    func formatted(maxFractionDigits digits: Int) -> String {
        guard isFinite else { return description }
        // From 1e15 on a Double holds no fraction digits worth rounding, and scaling
        // 1e303 by 1e6 would overflow to infinity: the shortest exact text instead.
        guard abs(self) < 1e15 else { return description }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (self * scale).rounded() / scale
        if rounded == rounded.rounded(.towardZero) {
            return String(Int64(rounded))
        }
        var text = String(rounded)
        if let dot = text.firstIndex(of: "."), text.distance(from: dot, to: text.endIndex) > digits + 1 {
            text = String(text[..<text.index(dot, offsetBy: digits + 1)])
        }
        return text
    }
}

/// Human units for sizes and rates in tables and logs.
enum HumanUnits {
    static func bytes(_ value: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(value)
        var unit = 0
        while v >= 1024, unit < units.count - 1 {
            v /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : "\(v.formatted(maxFractionDigits: 1)) \(units[unit])"
    }

    static func count(_ value: Double) -> String {
        switch value {
        case 1e9...: "\((value / 1e9).formatted(maxFractionDigits: 2))G"
        case 1e6...: "\((value / 1e6).formatted(maxFractionDigits: 2))M"
        case 1e4...: "\((value / 1e3).formatted(maxFractionDigits: 1))k"
        default: value.formatted(maxFractionDigits: 1)
        }
    }

    static func duration(nanoseconds: UInt64) -> String {
        let s = Double(nanoseconds) / 1e9
        switch s {
        case 60...: return "\(Int(s) / 60)m\(Int(s) % 60)s"
        case 1...: return "\(s.formatted(maxFractionDigits: 2))s"
        default: return "\((s * 1000).formatted(maxFractionDigits: 1))ms"
        }
    }
}

extension String {
    /// Pads with spaces on the right (or left) to `width` characters.
    func padded(to width: Int, right: Bool = false) -> String {
        let pad = String(repeating: " ", count: max(0, width - count))
        return right ? pad + self : self + pad
    }
}

extension Duration {
    /// `250ms`, `1.27s`, `2m5s`: short text for logs.
    public var shortDescription: String { HumanUnits.duration(nanoseconds: UInt64(max(0, nanoseconds))) }
}
