import Camflow
import Testing

/// `validate --allow-unset` leaves unchecked the errors whose cause is a
/// placeholder, and only those: decided by ``ConfigError/Cause``, not by
/// what a message says.
@Suite struct ConfigErrorCauseTests {
    /// A source with option `url` whose factory throws `refusal(options)`.
    func registry(_ refusal: @escaping @Sendable (NodeOptions) -> ConfigError?) -> NodeRegistry {
        let type = NodeType(name: "cam", summary: "test", options: [OptionSpec("url", .string, required: true, "where")],
                            accepts: [], emits: .kinds(.bytes)) { options in
            _ = try options.string("url")
            if let error = refusal(options) { throw error }
            return ClosureSource { _ in }
        }
        return TestNodes.registry(type)
    }

    /// Loads with unset variables allowed and validates; the errors, or the unchecked lines.
    func validate(_ registry: NodeRegistry) throws -> (unchecked: [String], errors: [ConfigError]) {
        var loader = PipelineLoader(environment: [:])
        loader.allowsUnsetVariables = true
        let spec = try loader.load("nodes:\n  a: { type: cam, url: \"rtsp://${CAM_HOST}/live\" }\n", file: "p.yaml")
        var validator = GraphValidator(registry: registry)
        validator.allowsPlaceholders = true
        do {
            return (try validator.validate(spec).unchecked, [])
        } catch {
            return ([], error.errors)
        }
    }

    @Test func anErrorOfPlaceholderCause_isLeftUnchecked_whateverItsMessage() throws {
        // The message does not quote the value: its cause alone says it is about the placeholder.
        let result = try validate(registry { options in
            var error = options.error("host does not resolve", option: "url")
            error.cause = .placeholder(["CAM_HOST"])
            return error
        })
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.unchecked == ["node 'a': option 'url' and what follows it depend on CAM_HOST"])
    }

    @Test func anInvalidError_isReported_evenQuotingThePlaceholder() throws {
        let result = try validate(registry { options in
            var error = options.error("found '\((try? options.string("url")) ?? "")'", option: "url")
            error.cause = .invalid
            return error
        })
        #expect(result.unchecked.isEmpty)
        #expect(result.errors.map(\.cause) == [.invalid])
    }

    @Test func anErrorQuotingAPlaceholder_hasThatCause() throws {
        // The factories' errors made without a cause (NodeOptions' own) are classified as they are made.
        let result = try validate(registry { options in
            options.error("expected a camera, found '\((try? options.string("url")) ?? "")'", option: "url")
        })
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.unchecked.count == 1)
    }

    @Test func anUnsetVariable_isAnErrorOfThatCause() {
        let errors: [ConfigError]
        do {
            _ = try PipelineLoader(environment: [:]).load("nodes:\n  a: { type: cam, url: \"${CAM_HOST}\" }\n", file: "p.yaml")
            errors = []
        } catch {
            errors = error.errors
        }
        #expect(errors.map(\.cause) == [.unsetVariable("CAM_HOST")])
        #expect(errors.first?.message == "environment variable 'CAM_HOST' is not set; set it or give a default: ${CAM_HOST:-value}")
    }
}
