// libyaml's event parser, which Yams is built on. Yams exposes no events of
// its own, and its composer hashes whole subtrees of alias keys, so the
// checks below must run on events, before Yams builds anything.
import CYaml

/// Refuses, before Yams composes a pipeline file, what would make composing
/// or reading it explode: aliases (a 700-byte "billion laughs" file expands
/// to gigabytes; camflow's files never needed them) and nesting deeper than
/// any pipeline needs (Yams composes recursively). Linear in the file's
/// size; nothing is expanded.
struct YAMLGuard {
    /// Why a file was refused, and where (1-based).
    struct Refusal: Equatable {
        var message: String
        var line: Int
        var column: Int
    }

    /// Deepest nesting of mappings and sequences accepted.
    var maxDepth = 64

    /// The first reason to refuse `text`, or nil. A syntax error is left to
    /// Yams, which reports it with its own words.
    func check(_ text: String) -> Refusal? {
        var text = text
        return text.withUTF8 { bytes -> Refusal? in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
            // libyaml keeps a pointer to the parser inside it: it must not move.
            let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
            parser.initialize(to: yaml_parser_t())
            defer {
                parser.deinitialize(count: 1)
                parser.deallocate()
            }
            guard yaml_parser_initialize(parser) == 1 else { return nil }
            defer { yaml_parser_delete(parser) }
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(parser, base, bytes.count)
            return scan(parser)
        }
    }

    private func scan(_ parser: UnsafeMutablePointer<yaml_parser_t>) -> Refusal? {
        var depth = 0
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(parser, &event) == 1 else { return nil }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return nil
            case YAML_ALIAS_EVENT:
                let name = event.data.alias.anchor.map { String(cString: UnsafePointer($0)) } ?? ""
                return Refusal(message: "YAML aliases (*\(UntrustedText.printable(name, limit: 32))) are not supported in pipeline files; write the value out",
                               line: line, column: column)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                depth += 1
                if depth > maxDepth {
                    return Refusal(message: "the file nests mappings and lists more than \(maxDepth) deep",
                                   line: line, column: column)
                }
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                depth -= 1
            default:
                break
            }
        }
    }
}
