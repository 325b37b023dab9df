import Camflow
import Testing

/// Golden tests: the whole message of each pipeline-file error, as a user sees it.
@Suite struct ConfigErrorTests {
    let registry = TestNodes.registry(
        TestNodes.source(name: "camera", count: 1, kind: .bytes),
        TestNodes.sink(name: "frame-sink", accepts: .frame, received: Shared([])))

    func errors(_ yaml: String, environment: [String: String] = [:]) -> String {
        do {
            let spec = try PipelineLoader(environment: environment).load(yaml, file: "p.yaml")
            _ = try GraphValidator(registry: registry).validate(spec)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func yamlSyntaxError_pointsAtTheProblem() {
        #expect(errors("""
            name: x
            nodes:
              a: { type: camera
              b: { type: log, inputs: [a] }
            """) == """
            p.yaml:4:4: error: YAML syntax: did not find expected ',' or '}'
             4 |   b: { type: log, inputs: [a] }
               |    ^
            note: while parsing a flow mapping at line 3, column 6
            """)
    }

    @Test func unknownType_suggestsClosestNames() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              buffer: { type: qeue, inputs: [cam] }
            """) == """
            p.yaml:3:19: error: unknown node type 'qeue' (node 'buffer'); did you mean 'queue'?
             3 |   buffer: { type: qeue, inputs: [cam] }
               |                   ^
            note: run 'camflow nodes' to list the types
            """)
    }

    @Test func unknownOption_suggestsClosestOption() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              buffer:
                type: queue
                inputs: [cam]
                max-packet: 10
            """) == """
            p.yaml:6:5: error: unknown option 'max-packet' for node 'buffer' (queue); did you mean 'max-packets'?
             6 |     max-packet: 10
               |     ^
            note: its options are max-packets, max-bytes, max-duration, when-full; see 'camflow nodes queue'
            """)
    }

    @Test func wrongValueType_saysWhatWasExpected() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              buffer: { type: queue, inputs: [cam], max-bytes: lots }
            """) == """
            p.yaml:3:52: error: option 'max-bytes' of node 'buffer' (queue): expected a size such as 4096, 512KiB, 64MiB, found 'lots'
             3 |   buffer: { type: queue, inputs: [cam], max-bytes: lots }
               |                                                    ^
            """)
    }

    @Test func wrongChoice_listsTheChoices() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              buffer: { type: queue, inputs: [cam], when-full: drop-old }
            """) == """
            p.yaml:3:52: error: option 'when-full' of node 'buffer' (queue): expected one of 'block', 'drop-oldest', 'drop-newest', 'drop-gop', found 'drop-old'
             3 |   buffer: { type: queue, inputs: [cam], when-full: drop-old }
               |                                                    ^
            """)
    }

    @Test func missingRequiredOption() throws {
        let registry = NodeRegistry(plugins: []).adding([
            NodeType(name: "needs-path", summary: "", options: [OptionSpec("path", .string, required: true, "The file.")],
                     accepts: [], emits: .kinds(.bytes)) { _ in ClosureSource { _ in } },
        ])
        let spec = try PipelineLoader(environment: [:]).load("""
            nodes:
              replay: { type: needs-path }
            """, file: "p.yaml")
        #expect(throws: ConfigErrors.self) { try GraphValidator(registry: registry).validate(spec) }
        do {
            _ = try GraphValidator(registry: registry).validate(spec)
        } catch {
            #expect(error.description == """
                p.yaml:2:3: error: node 'replay' (needs-path) needs option 'path': The file.
                 2 |   replay: { type: needs-path }
                   |   ^
                """)
        }
    }

    @Test func inputNamingNoNode_suggestsIds() {
        #expect(errors("""
            nodes:
              camera1: { type: camera }
              log: { type: log, inputs: [camera2] }
            """) == """
            p.yaml:3:30: error: input 'camera2' of node 'log' is not a node in this pipeline; did you mean 'camera1'?
             3 |   log: { type: log, inputs: [camera2] }
               |                              ^
            """)
    }

    @Test func duplicateID_pointsAtTheSecond() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              log: { type: log, inputs: [cam] }
              cam: { type: camera }
            """) == """
            p.yaml:4:3: error: duplicate key 'cam': node ids and options may appear once per mapping
             4 |   cam: { type: camera }
               |   ^
            note: 'cam' is first defined at line 2
            """)
    }

    @Test func cycle_namesItsNodes() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              a: { type: queue, inputs: [cam, c] }
              b: { type: queue, inputs: [a] }
              c: { type: queue, inputs: [b] }
              log: { type: log, inputs: [c] }
            """) == """
            p.yaml:5:30: error: the pipeline has a cycle: b -> c -> a -> b
             5 |   c: { type: queue, inputs: [b] }
               |                              ^
            note: packets must flow one way; remove one of these inputs
            """)
    }

    @Test func incompatibleKinds_nameBothNodes() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              buffer: { type: queue, inputs: [cam] }
              frames: { type: frame-sink, inputs: [buffer] }
            """) == """
            p.yaml:4:40: error: node 'frames' (frame-sink) accepts frame packets, but its input 'buffer' (queue) sends bytes
             4 |   frames: { type: frame-sink, inputs: [buffer] }
               |                                        ^
            note: put a node that turns bytes into frame between them
            """)
    }

    @Test func sinkWithoutInput() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              log: { type: log }
            """) == """
            p.yaml:3:3: error: node 'log' is a sink (log) with no input; add 'inputs: [...]'
             3 |   log: { type: log }
               |   ^
            """)
    }

    @Test func undefinedEnvironmentVariable_pointsInsideTheValue() {
        #expect(errors("""
            nodes:
              cam: { type: camera }
              log: { type: log, inputs: [cam], prefix: "cam ${CAMERA_NAME}" }
            """) == """
            p.yaml:3:49: error: environment variable 'CAMERA_NAME' is not set; set it or give a default: ${CAMERA_NAME:-value}
             3 |   log: { type: log, inputs: [cam], prefix: "cam ${CAMERA_NAME}" }
               |                                                 ^
            """)
    }

    @Test func environmentVariables_interpolateWithDefaults() throws {
        let spec = try PipelineLoader(environment: ["NAME": "front"]).load("""
            nodes:
              cam: { type: camera }
              log: { type: log, inputs: [cam], prefix: "${NAME}/${MISSING:-none}/$${NAME}" }
            """, file: "p.yaml")
        #expect(spec.nodes[1].options["prefix"]?.scalarText == "front/none/${NAME}")
    }

    @Test func severalErrors_areAllReported() throws {
        let text = errors("""
            nodes:
              cam: { type: camera }
              a: { type: queue, inputs: [cam], max-packets: many, colour: red }
            """)
        #expect(text.contains("p.yaml:3:49: error: option 'max-packets'"))
        #expect(text.contains("p.yaml:3:55: error: unknown option 'colour'"))
    }

    @Test func windowsLineEnds_pointAtTheRightLine_andADuplicateKeyDoesNotTrap() {
        let text = errors("nodes:\r\n  cam: { type: camera }\r\n  cam: { type: camera }\r\n")
        #expect(text.contains("p.yaml:3:3: error: duplicate key 'cam'"), "\(text)")
        #expect(text.contains(" 3 |   cam: { type: camera }"), "the line quoted is line 3 alone: \(text)")
    }

    @Test func numbersAndDurationsOutOfRange_areErrors_notTraps() {
        let duration = errors("""
            nodes:
              cam: { type: camera, restart: { backoff: 200000d } }
            """)
        #expect(duration.contains("'restart.backoff': expected a duration"), "\(duration)")
        #expect(Units.duration("3000000000s") != nil && Units.duration("4000000000s") == nil)
        #expect(Units.size("inf") == nil && Units.duration("nan") == nil)
    }
}
