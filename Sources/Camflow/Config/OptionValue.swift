/// An option value as written in the pipeline file (after `${VAR}`
/// interpolation), with where it was written.
public struct OptionValue: Sendable {
    /// The shape of the value.
    public indirect enum Content: Sendable {
        case scalar(String)
        case list([OptionValue])
        case map([(key: String, value: OptionValue)])
    }

    public var content: Content
    /// Where the value starts; nil for values made in code.
    public var location: SourceLocation?

    public init(_ content: Content, at location: SourceLocation? = nil) {
        self.content = content
        self.location = location
    }

    /// A scalar made in code.
    public static func scalar(_ text: String) -> OptionValue { OptionValue(.scalar(text)) }

    /// A list of scalars made in code.
    public static func list(_ items: [String]) -> OptionValue { OptionValue(.list(items.map(scalar))) }

    /// Whether a placeholder for an unset variable stands anywhere in the value.
    var holdsPlaceholder: Bool { !placeholderNames.isEmpty }

    /// A list without its items that hold placeholders (the others are
    /// still checked); any other value as it is.
    var withoutPlaceholders: OptionValue {
        guard case .list(let items) = content else { return self }
        return OptionValue(.list(items.filter { !$0.holdsPlaceholder }), at: location)
    }

    /// The unset variables whose placeholders the value holds.
    var placeholderNames: [String] {
        switch content {
        case .scalar(let text): return Interpolation.placeholderNames(in: text) ?? []
        case .list(let items): return items.flatMap(\.placeholderNames)
        case .map(let pairs): return pairs.flatMap(\.value.placeholderNames)
        }
    }

    /// The text of a scalar, nil for lists and maps.
    public var scalarText: String? {
        if case .scalar(let text) = content { return text }
        return nil
    }

    /// What the value looks like, for "expected X, found Y" messages.
    var shapeName: String {
        switch content {
        case .scalar(let text): "'\(text)'"
        case .list: "a list"
        case .map: "a mapping"
        }
    }
}

extension OptionValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .scalar(value) }
}

extension OptionValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: OptionValue...) { self.init(.list(elements)) }
}
