import Camflow
import Testing

@Suite struct StreamTableTests {
    @Test func aNewStreamBeyondCapacity_evictsTheOneIdleLongest() {
        var table = StreamTable<Int>(capacity: 2)
        #expect(table.put(1, for: "a") == nil)
        #expect(table.put(2, for: "b") == nil)
        // "a" is used again, so "b" is now idle longest.
        let a = table.take("a")
        #expect(a == 1)
        #expect(table.put(10, for: "a") == nil)
        let evicted = table.put(3, for: "c")
        #expect(evicted?.stream == "b" && evicted?.value == 2)
        #expect(table.streams == ["a", "c"])
        #expect(table["a"] == 10)
        // Updating a held stream never evicts.
        #expect(table.put(11, for: "a") == nil)
        #expect(table.count == 2)
    }

    /// Seconds of work in a debug build: it yields now and then, so that the
    /// tests running beside it on the cooperative pool are not held up meanwhile.
    @Test func aMillionStreamNames_holdOnlyTheCapacity() async {
        var table = StreamTable<Int>(capacity: 64)
        var evictions = 0
        for index in 0..<100_000 {
            if index % 1000 == 0 { await Task.yield() }
            if table.put(index, for: "peer-\(index)") != nil { evictions += 1 }
        }
        #expect(table.count == 64)
        #expect(evictions == 100_000 - 64)
    }
}
