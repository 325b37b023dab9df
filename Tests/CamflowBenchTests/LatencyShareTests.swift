@testable import CamflowBench
import Testing

/// The share benchmark's reading of `camflow_web_delivery_seconds` from /metrics.
@Suite struct LatencyShareTests {
    static let text = """
        # TYPE camflow_web_delivery_seconds histogram
        camflow_web_delivery_seconds_bucket{node="web",way="webrtc",le="0.001"} 7
        camflow_web_delivery_seconds_bucket{node="web",way="webrtc",le="+Inf"} 7
        camflow_web_delivery_seconds_bucket{node="web",way="mse",le="0.002"} 60
        camflow_web_delivery_seconds_bucket{node="web",way="mse",le="0.001"} 50
        camflow_web_delivery_seconds_bucket{node="web",way="mse",le="0.005"} 99
        camflow_web_delivery_seconds_bucket{node="web",way="mse",le="0.01"} 100
        camflow_web_delivery_seconds_bucket{node="web",way="mse",le="+Inf"} 100
        camflow_web_delivery_seconds_sum{node="web",way="mse"} 0.2
        camflow_web_delivery_seconds_count{node="web",way="mse"} 100
        camflow_web_viewers{node="web",stream="cam"} 3
        """

    @Test func parsesOneWaysBuckets_inOrder() throws {
        let mse = try #require(BucketCounts.parse(Self.text, metric: "camflow_web_delivery_seconds", labels: ["way": "mse"]))
        #expect(mse == BucketCounts(bounds: [0.001, 0.002, 0.005, 0.01], cumulative: [50, 60, 99, 100], count: 100))
        #expect(BucketCounts.parse(Self.text, metric: "camflow_web_delivery_seconds", labels: ["way": "hls"]) == nil)
    }

    @Test func quantiles_areLinearInsideTheirBucket_andTheMaxIsItsBucketsBound() throws {
        let mse = try #require(BucketCounts.parse(Self.text, metric: "camflow_web_delivery_seconds", labels: ["way": "mse"]))
        // Rank 50 of 100 ends the first bucket, [0, 1 ms].
        #expect(try #require(mse.quantile(0.5)) == 0.001)
        // Rank 99: the 39th of 39 in (2, 5] ms.
        #expect(abs(try #require(mse.quantile(0.99)) - 0.005) < 1e-12)
        // Rank 55: half-way through (1, 2] ms.
        #expect(abs(try #require(mse.quantile(0.55)) - 0.0015) < 1e-12)
        #expect(mse.maxBound == 0.01)
        #expect(mse.summary == "p50 1.00 ms  p99 5.00 ms  max ≤10.0 ms")
    }

    @Test func valuesPastTheLastBound_sayOnlyThat_andAnEmptyWindowSaysSo() {
        let slow = BucketCounts(bounds: [0.001, 0.1], cumulative: [10, 90], count: 100)
        // Rank 50: the 40th of 80 in (1, 100] ms.
        #expect(abs((slow.quantile(0.5) ?? 0) - 0.0505) < 1e-12)
        #expect(slow.quantile(0.99) == .infinity)
        #expect(slow.maxBound == .infinity)
        #expect(slow.summary.hasSuffix("p99 >100.0 ms  max >100.0 ms"))
        #expect(BucketCounts(bounds: [0.001], cumulative: [0], count: 0).summary == "no fragments recorded")
    }

    @Test func aWindow_isTheDifferenceOfTwoReadings() {
        let before = BucketCounts(bounds: [0.001, 0.002], cumulative: [5, 6], count: 6)
        let after = BucketCounts(bounds: [0.001, 0.002], cumulative: [15, 20], count: 21)
        #expect(after.subtracting(before) == BucketCounts(bounds: [0.001, 0.002], cumulative: [10, 14], count: 15))
        #expect(after.subtracting(nil) == after)
    }
}
