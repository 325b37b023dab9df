/// The options of one node as its factory reads them: typed getters that fall
/// back to the declared default and throw a ``ConfigError`` pointing at the
/// value when it does not fit.
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

    /// The raw value as written, or the default.
    public func value(_ name: String) throws -> OptionValue? {
        guard let spec = specs.first(where: { $0.name == name }) else {
            throw ConfigError("node '\(nodeID)' reads option '\(name)', which its type does not declare", at: location)
        }
        if let value = values[name] { return value }
        return spec.defaultValue.map { OptionValue(.scalar($0)) }
    }

    public func string(_ name: String) throws -> String? {
        try scalar(name) { $0 }
    }

    /// A string the pipeline must set.
    public func requiredString(_ name: String) throws -> String {
        guard let text = try string(name) else {
            throw ConfigError("node '\(nodeID)' needs option '\(name)'", at: location)
        }
        return text
    }

    public func integer(_ name: String) throws -> Int? { try scalar(name) { Int($0) } }
    public func number(_ name: String) throws -> Double? { try scalar(name) { Double($0) } }
    public func bool(_ name: String) throws -> Bool? { try scalar(name) { Bool(yaml: $0) } }
    public func duration(_ name: String) throws -> Duration? { try scalar(name) { Units.duration($0) } }
    /// A size in bytes.
    public func size(_ name: String) throws -> Int? { try scalar(name) { Units.size($0) } }
    /// A rate in bytes per second.
    public func rate(_ name: String) throws -> Double? { try scalar(name) { Units.rate($0) } }

    /// A `choice` option mapped to a value type (often an enum).
    public func choice<T: RawRepresentable>(_ name: String, as type: T.Type = T.self) throws -> T?
    where T.RawValue == String {
        try scalar(name) { T(rawValue: $0) }
    }

    /// A list of strings; a single value counts as a list of one.
    public func stringList(_ name: String) throws -> [String]? {
        guard let value = try value(name) else { return nil }
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

    private func scalar<T>(_ name: String, _ convert: (String) -> T?) throws -> T? {
        guard let value = try value(name) else { return nil }
        let type = specs.first(where: { $0.name == name })?.type ?? .string
        guard let text = value.scalarText, let converted = convert(text) else {
            throw mismatch(name, value, type.expectation)
        }
        return converted
    }

    private func mismatch(_ name: String, _ value: OptionValue, _ expected: String) -> ConfigError {
        ConfigError("option '\(name)' of node '\(nodeID)': expected \(expected), found \(value.shapeName)",
                    at: value.location ?? location)
    }
}
