/// The type of a node option: checked at load time and shown in `camflow nodes`.
public indirect enum OptionType: Sendable, Equatable, CustomStringConvertible {
    case string
    /// A string that is never printed: passwords, keys.
    case secret
    case integer
    case number
    case bool
    /// `250ms`, `5s`, `2m`, `1h`, `7d`.
    case duration
    /// `4096`, `512KiB`, `64MiB`, `1GB`.
    case size
    /// `1MiB/s`.
    case rate
    /// One of the listed words.
    case choice([String])
    /// A list of values (a single value is taken as a list of one).
    case list(OptionType)
    /// Names mapped to scalar values (a composite graph's `params`).
    case mapping

    public var description: String {
        switch self {
        case .string: "string"
        case .secret: "secret"
        case .integer: "integer"
        case .number: "number"
        case .bool: "bool"
        case .duration: "duration"
        case .size: "size"
        case .rate: "rate"
        case .choice(let words): words.joined(separator: "|")
        case .list(let element): "list of \(element)"
        case .mapping: "mapping"
        }
    }

    /// Checks that `value` has this type; nil when it does, else what was expected.
    func mismatch(_ value: OptionValue) -> String? {
        switch self {
        case .list(let element):
            if case .list(let items) = value.content {
                return items.lazy.compactMap { element.mismatch($0) }.first
            }
            return element.mismatch(value)
        case .mapping:
            if case .map = value.content { return nil }
            return "expected \(expectation), found \(value.shapeName)"
        default:
            guard let text = value.scalarText else { return "expected \(expectation), found \(value.shapeName)" }
            return accepts(text) ? nil : "expected \(expectation), found '\(text)'"
        }
    }

    /// What a valid value looks like, in words.
    var expectation: String {
        switch self {
        case .string, .secret: "a string"
        case .integer: "an integer"
        case .number: "a number"
        case .bool: "true or false"
        case .duration: "a duration such as 250ms, 5s, 2m"
        case .size: "a size such as 4096, 512KiB, 64MiB"
        case .rate: "a rate such as 1MiB/s"
        case .choice(let words): "one of " + words.map { "'\($0)'" }.joined(separator: ", ")
        case .list(let element): "a list of \(element)"
        case .mapping: "a mapping of names to values"
        }
    }

    /// A scalar's value as a number in the type's unit (bytes, seconds,
    /// bytes per second), to compare with a range; nil for other types.
    func magnitude(_ text: String) -> Double? {
        switch self {
        case .integer: Int(text).map(Double.init)
        case .number: Double(text)
        case .duration: Units.duration(text)?.seconds
        case .size: Units.size(text).map(Double.init)
        case .rate: Units.rate(text)
        case .list(let element): element.magnitude(text)
        default: nil
        }
    }

    func accepts(_ text: String) -> Bool {
        switch self {
        case .string, .secret: true
        case .integer: Int(text) != nil
        case .number: Double(text)?.isFinite == true
        case .bool: Bool(yaml: text) != nil
        case .duration: Units.duration(text) != nil
        case .size: Units.size(text) != nil
        case .rate: Units.rate(text) != nil
        case .choice(let words): words.contains(text)
        case .list(let element): element.accepts(text)
        case .mapping: false
        }
    }
}

/// One documented option of a node type. The same declaration checks the
/// YAML, supplies the default and the range, and writes `camflow nodes` and
/// docs/nodes.md: a factory reads the value through ``NodeOptions`` and
/// repeats none of it.
public struct OptionSpec: Sendable {
    /// Kebab-case name as written in YAML.
    public var name: String
    public var type: OptionType
    /// The default, written as a user would write it; nil for none.
    public var defaultValue: String?
    /// Whether a pipeline must set it.
    public var isRequired: Bool
    /// The smallest and largest value allowed, written as a user would
    /// (`1`, `1KiB`, `1ms`); nil for no bound.
    public var minimum: String?
    public var maximum: String?
    /// A bound the value must exceed: `above: "0"` for "positive".
    public var exclusiveMinimum: String?
    /// One or two sentences for users.
    public var summary: String

    public init(_ name: String, _ type: OptionType, default defaultValue: String? = nil,
                required: Bool = false, min minimum: String? = nil, above exclusiveMinimum: String? = nil,
                max maximum: String? = nil, _ summary: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.isRequired = required
        self.minimum = minimum
        self.maximum = maximum
        self.exclusiveMinimum = exclusiveMinimum
        self.summary = summary
    }

    /// The range in words (`at least 1KiB`, `1 to 65535`); nil when unbounded.
    public var rangeDescription: String? {
        if let exclusiveMinimum {
            return "more than \(exclusiveMinimum)" + (maximum.map { ", at most \($0)" } ?? "")
        }
        return switch (minimum, maximum) {
        case let (min?, max?): "\(min) to \(max)"
        case let (min?, nil): "at least \(min)"
        case let (nil, max?): "at most \(max)"
        case (nil, nil): nil
        }
    }

    /// Whether a scalar of this option lies in its range.
    func inRange(_ text: String) -> Bool {
        guard let value = type.magnitude(text) else { return true }
        if let minimum, let low = type.magnitude(minimum), value < low { return false }
        if let exclusiveMinimum, let low = type.magnitude(exclusiveMinimum), value <= low { return false }
        if let maximum, let high = type.magnitude(maximum), value > high { return false }
        return true
    }
}

extension Bool {
    /// YAML 1.2 core booleans, plus yes/no/on/off that users write.
    init?(yaml text: String) {
        switch text.lowercased() {
        case "true", "yes", "on": self = true
        case "false", "no", "off": self = false
        default: return nil
        }
    }
}
