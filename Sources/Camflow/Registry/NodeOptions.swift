/// The options of one node as its factory reads them: typed getters that
/// return the value set in the pipeline or else the declared default, check
/// the declared range, and throw a ``ConfigError`` pointing at the value
/// when it does not fit. Defaults and ranges live in the ``OptionSpec``
/// only; a factory never repeats them.
public struct NodeOptions: Sendable {
    /// The node's id in the pipeline.
    public let nodeID: String
    /// The node's declared options.
    public let specs: [OptionSpec]
    /// Where the node is declared, for errors about missing options.
    public let location: SourceLocation?
    private let values: [String: OptionValue]

    /// Options for `nodeID`; `values` are checked against `specs` by the
    /// pipeline loader before a factory sees them.
    public init(nodeID: String, specs: [OptionSpec], values: [String: OptionValue] = [:],
                location: SourceLocation? = nil) {
        self.nodeID = nodeID
        self.specs = specs
        self.values = values
        self.location = location
    }

    /// Whether the pipeline set `name` (defaults do not count).
    public func isSet(_ name: String) -> Bool { values[name] != nil }

    /// The raw value as written, or the default; nil when neither exists.
    public func value(_ name: String) throws -> OptionValue? {
        let spec = try self.spec(name)
        if let value = values[name] { return value }
        return spec.defaultValue.map { OptionValue(.scalar($0)) }
    }

    /// A problem with option `name`, said the one way every node says it and
    /// pointing at the value (or at the node when the option is not set):
    /// `option 'NAME' of node 'ID': MESSAGE`.
    public func error(_ message: String, option name: String) -> ConfigError {
        ConfigError("option '\(name)' of node '\(nodeID)': \(message)", at: values[name]?.location ?? location)
    }

    /// A problem of the node as a whole (options that go together): `node 'ID': MESSAGE`.
    public func error(_ message: String) -> ConfigError {
        ConfigError("node '\(nodeID)': \(message)", at: location)
    }

    /// An option that is set or has a default, read with `read`; nil when it
    /// is neither: `try options.ifSet("max-size", options.size)`.
    public func ifSet<T>(_ name: String, _ read: (String) throws -> T) throws -> T? {
        try value(name) == nil ? nil : try read(name)
    }

    public func string(_ name: String) throws -> String { try scalar(name) { $0 } }
    public func integer(_ name: String) throws -> Int { try scalar(name) { Int($0) } }
    public func number(_ name: String) throws -> Double { try scalar(name) { Double($0) } }
    public func bool(_ name: String) throws -> Bool { try scalar(name) { Bool(yaml: $0) } }
    public func duration(_ name: String) throws -> Duration { try scalar(name) { Units.duration($0) } }
    /// A size in bytes.
    public func size(_ name: String) throws -> Int { try scalar(name) { Units.size($0) } }
    /// A rate in bytes per second.
    public func rate(_ name: String) throws -> Double { try scalar(name) { Units.rate($0) } }

    /// A `choice` option mapped to a value type (often an enum).
    public func choice<T: RawRepresentable>(_ name: String, as type: T.Type = T.self) throws -> T
    where T.RawValue == String {
        try scalar(name) { T(rawValue: $0) }
    }

    /// A list of strings; a single value counts as a list of one, and an
    /// option neither set nor defaulted as the empty list.
    public func stringList(_ name: String) throws -> [String] {
        guard let value = try value(name) else { return [] }
        switch value.content {
        case .scalar(let text): return [text]
        case .list(let items):
            return try items.map { item in
                guard let text = item.scalarText else { throw mismatch(name, item, "a list of strings") }
                return text
            }
        case .map: throw mismatch(name, value, "a list of strings")
        }
    }

    private func spec(_ name: String) throws -> OptionSpec {
        guard let spec = specs.first(where: { $0.name == name }) else {
            throw ConfigError("node '\(nodeID)' reads option '\(name)', which its type does not declare", at: location)
        }
        return spec
    }

    private func scalar<T>(_ name: String, _ convert: (String) -> T?) throws -> T {
        let spec = try self.spec(name)
        guard let value = try value(name) else {
            throw ConfigError("node '\(nodeID)' needs option '\(name)'", at: location)
        }
        guard let text = value.scalarText, let converted = convert(text) else {
            throw mismatch(name, value, spec.type.expectation)
        }
        guard spec.inRange(text) else {
            throw ConfigError("option '\(name)' of node '\(nodeID)': expected \(spec.rangeDescription ?? ""), found '\(text)'",
                              at: value.location ?? location)
        }
        return converted
    }

    private func mismatch(_ name: String, _ value: OptionValue, _ expected: String) -> ConfigError {
        ConfigError("option '\(name)' of node '\(nodeID)': expected \(expected), found \(value.shapeName)",
                    at: value.location ?? location)
    }
}
