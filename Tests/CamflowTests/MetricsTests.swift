import Camflow
import Logging
import Metrics
import MetricsTestKit
import Testing

/// The process-wide metrics backend, bootstrapped once for this test target.
let testMetrics: TestMetrics = {
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    return metrics
}()

@Suite struct MetricsTests {
    @Test func countersReachSwiftMetrics() async throws {
        let metrics = testMetrics
        let registry = TestNodes.registry(TestNodes.source(count: 120, payloadSize: 10),
                                          TestNodes.sink(received: Shared([])))
        let graph = try GraphValidator(registry: registry).validate(PipelineSpec(name: "metrics-test", nodes: [
            NodeSpec(id: "src", type: "test-source"),
            NodeSpec(id: "sink", type: "test-sink", inputs: ["src"]),
        ]))
        try await Pipeline(graph: graph, logger: Logger(label: "t"), metricsInterval: .milliseconds(5)).run()
        let node = [("pipeline", "metrics-test"), ("node", "src"), ("type", "test-source")]
        #expect(try metrics.expectCounter("camflow_node_packets_out_total", node).totalValue == 120)
        #expect(try metrics.expectCounter("camflow_node_bytes_out_total", node).totalValue == 1200)
        let edge = [("pipeline", "metrics-test"), ("from", "src"), ("to", "sink")]
        #expect(try metrics.expectCounter("camflow_edge_packets_total", edge).totalValue == 120)
        #expect(try metrics.expectGauge("camflow_edge_capacity", edge).lastValue == 16)
    }
}
