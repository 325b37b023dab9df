import ISOBMFF
import NIOCore
import Testing

/// Values read from the wire at their largest, smallest and strangest: each
/// becomes a typed error at a position, never a trap, and the parser's
/// memory depends on the box in flight, not on the stream's length.
@Suite struct HostileInputTests {
    let fixture: BadInputTests = BadInputTests()

    /// ftyp + moov of the baseline fixture, and its first whole fragment.
    func initAndFragment() throws -> (initSegment: ByteBuffer, fragment: ByteBuffer) {
        let parts = try fixture.boxes("h264-baseline.mp4")
        return (fixture.joined([parts[0].bytes, parts[1].bytes]), fixture.joined([parts[2].bytes, parts[3].bytes]))
    }

    func bytes(_ values: [any FixedWidthInteger], _ tail: [UInt8] = []) -> ByteBuffer {
        var out = ByteBuffer()
        for value in values {
            switch value {
            case let v as UInt32: out.writeInteger(v)
            case let v as UInt64: out.writeInteger(v)
            case let v as Int64: out.writeInteger(v)
            default: Issue.record("unsupported \(type(of: value))")
            }
        }
        out.writeBytes(tail)
        return out
    }

    func fourCC(_ text: String) -> UInt32 { FourCC(stringLiteral: text).rawValue }

    @Test func memory_dependsOnTheBoxInFlight_notOnTheStreamLength() throws {
        let (initSegment, fragment) = try initAndFragment()
        var parser = StreamingParser()
        var stream = initSegment
        var fragments = 0
        var peak = 0
        var chunk = ByteBuffer()
        // 2,000 fragments (30 MB) in chunks of 7,919 bytes, which never line up with boxes.
        for _ in 0..<2000 {
            stream.writeImmutableBuffer(fragment)
            while stream.readableBytes >= 7919 {
                chunk = stream.readSlice(length: 7919)!
                parser.append(chunk)
                while let item = try parser.next() {
                    if case .fragment = item { fragments += 1 }
                }
                peak = max(peak, parser.retainedBytes)
            }
            stream.discardReadBytes()
        }
        #expect(fragments >= 1999)
        // One fragment (15 KB) gathered, plus the chunk it came with.
        #expect(peak <= 2 * (fragment.readableBytes + 7919), "the parser held \(peak) bytes")
    }

    @Test func mdatLargesizeNearInt64Max_isTooLarge_andTheNextFragmentIsFound() throws {
        let (initSegment, fragment) = try initAndFragment()
        var moof = fragment
        let moofSize = Int(moof.getInteger(at: moof.readerIndex, as: UInt32.self)!)
        moof.moveWriterIndex(to: moof.readerIndex + moofSize)
        for size in [UInt64(Int64.max - 1), UInt64.max, UInt64(1) << 62] {
            let stream = fixture.joined([initSegment, moof, bytes([UInt32(1), fourCC("mdat"), size]), fragment])
            let result = parse(stream, cuts: [7919])
            #expect(result.errors.first?.code == .boxTooLarge, "largesize \(size)")
            #expect(result.fragmentSequence == [1], "largesize \(size): the good fragment after it is found")
        }
    }

    @Test func topLevelBoxesTooLarge_areCorruption_notSkippedBlind() throws {
        let (initSegment, fragment) = try initAndFragment()
        for type in ["free", "ftyp", "mdat", "zzzz"] {
            let huge = bytes([UInt32(1), fourCC(type), UInt64(1) << 62], Array(repeating: 0x11, count: 40))
            let result = parse(fixture.joined([initSegment, huge, fragment]), cuts: [333])
            #expect(result.errors.map(\.code) == [.boxTooLarge], "\(type)")
            #expect(result.fragmentSequence == [1], "\(type): the parser looked for the next box instead of skipping 2^62 bytes")
        }
    }

    @Test func mdatOfSizeZero_doesNotBlindTheParser() throws {
        let (initSegment, fragment) = try initAndFragment()
        let toEnd = bytes([UInt32(0), fourCC("mdat")], Array(repeating: 0x55, count: 300))
        let result = parse(fixture.joined([initSegment, toEnd, fragment, fragment]), cuts: [100])
        #expect(result.errors.isEmpty)
        #expect(result.fragmentSequence == [1, 1])
        #expect(result.skipped == ["mdat:-1"])
    }

    /// The baseline fixture's first fragment with its tfdt (version 1) set to `time`.
    func fragment(withDecodeTime time: Int64) throws -> ByteBuffer {
        var fragment = try initAndFragment().fragment
        let raw = Array(fragment.readableBytesView)
        let tfdt = try #require(fixture.findBox("tfdt", in: raw))
        #expect(raw[tfdt + 8] == 1, "a version 1 tfdt")
        fragment.setInteger(time, at: fragment.readerIndex + tfdt + 12)
        return fragment
    }

    @Test func decodeTimesThatOverflow_areInvalidFields() throws {
        let initSegment = try initAndFragment().initSegment
        // Int64.min too: a consumer taking its magnitude, negating it or subtracting from it would trap.
        for time in [Int64.max, Int64.max - 100, Int64.min, Int64.min + 1] {
            let result = parse(fixture.joined([initSegment, try fragment(withDecodeTime: time), try initAndFragment().fragment]),
                               cuts: [4096])
            #expect(result.errors.map(\.code) == [.invalidField], "tfdt \(time)")
            #expect(result.errors.first?.path == "moof/traf/tfdt")
            #expect(result.errors.first?.message.contains("64-bit nanoseconds") == true)
            #expect(result.fragmentSequence == [1], "tfdt \(time): the fragment after it parses")
        }
    }

    @Test func decodeTimes_areBoundedByNanosecondsAtTheTrackTimescale() throws {
        let initSegment = try initAndFragment().initSegment
        let timescale = try #require(try InitSegment(parsing: initSegment).tracks.first?.timescale)
        let limit = Fragment.maxTicks(timescale: timescale)
        #expect(limit == Int64.max / 1_000_000_000 * Int64(timescale))
        #expect(Fragment.maxTicks(timescale: .max) == .max, "clamped, not overflowed")
        // At the limit from below the samples count up, towards zero: every time fits.
        let lowest = parse(fixture.joined([initSegment, try fragment(withDecodeTime: -limit)]), cuts: [4096])
        #expect(lowest.errors.isEmpty)
        #expect(lowest.samples.first?.dts == -limit)
        #expect(lowest.samples.allSatisfy { $0.dts.magnitude <= limit.magnitude && $0.pts.magnitude <= limit.magnitude })
        // Just below the limit, the samples counting up pass it: refused by the trun.
        let highest = parse(fixture.joined([initSegment, try fragment(withDecodeTime: limit - 1)]), cuts: [4096])
        #expect(highest.errors.map(\.code) == [.invalidField])
        #expect(highest.errors.first?.path == "moof/traf/trun")
        #expect(highest.errors.first?.message.contains("overflows") == true)
        // One tick past it, the tfdt itself is refused.
        let beyond = parse(fixture.joined([initSegment, try fragment(withDecodeTime: -limit - 1)]), cuts: [4096])
        #expect(beyond.errors.map(\.path) == ["moof/traf/tfdt"])
    }

    @Test func baseDataOffsetOutsideTheFragment_isRejected() throws {
        let initSegment = try initAndFragment().initSegment
        for base in [UInt64(1) << 63, UInt64(1) << 62, UInt64.max] {
            var traf = bytes([UInt32(28), fourCC("tfhd"), UInt32(0x01), UInt32(1), base])
            traf.writeImmutableBuffer(bytes([UInt32(16), fourCC("trun"), UInt32(0), UInt32(0)]))
            var moof = bytes([UInt32(16), fourCC("mfhd"), UInt32(0), UInt32(5)])
            moof.writeImmutableBuffer(bytes([UInt32(8 + traf.readableBytes), fourCC("traf")]))
            moof.writeImmutableBuffer(traf)
            let stream = fixture.joined([initSegment, bytes([UInt32(8 + moof.readableBytes), fourCC("moof")]), moof,
                                         bytes([UInt32(16), fourCC("mdat"), UInt64(0)])])
            let result = parse(stream, cuts: [1000])
            #expect(result.errors.map(\.code) == [.sampleOutsideMdat], "base_data_offset \(base)")
        }
    }

    /// A moof with `truns` truns of `count` samples that carry no per-sample
    /// fields (so each is 0 bytes), all pointing at the mdat's payload.
    func sampleBomb(truns: Int, count: UInt32, mdatBytes: Int) -> ByteBuffer {
        var traf = bytes([UInt32(16), fourCC("tfhd"), UInt32(0x2_0000), UInt32(1)])
        let moofSize = UInt32(8 + 16 + 8 + 16 + truns * 20)
        for _ in 0..<truns {
            traf.writeImmutableBuffer(bytes([UInt32(20), fourCC("trun"), UInt32(0x01), count, moofSize + 8]))
        }
        var moof = bytes([UInt32(16), fourCC("mfhd"), UInt32(0), UInt32(5)])
        moof.writeImmutableBuffer(bytes([UInt32(8 + traf.readableBytes), fourCC("traf")]))
        moof.writeImmutableBuffer(traf)
        var out = bytes([UInt32(8 + moof.readableBytes), fourCC("moof")])
        out.writeImmutableBuffer(moof)
        out.writeImmutableBuffer(bytes([UInt32(8 + mdatBytes), fourCC("mdat")], Array(repeating: 0, count: mdatBytes)))
        return out
    }

    @Test func sampleCounts_areCappedAcrossAllTruns() throws {
        let initSegment = try initAndFragment().initSegment
        // Each trun alone fits the mdat (1 MiB of 0-byte samples); sixteen together pass the cap.
        let bomb = sampleBomb(truns: 16, count: 1 << 20, mdatBytes: 1 << 20)
        let result = parse(fixture.joined([initSegment, bomb]), cuts: [65536], keepSampleBytes: false)
        #expect(result.errors.map(\.code) == [.invalidField])
        #expect(result.errors.first?.message.contains("more than 65536 samples") == true)
        // Within the cap, zero-size samples are still read.
        let small = parse(fixture.joined([initSegment, sampleBomb(truns: 2, count: 100, mdatBytes: 200)]), cuts: [4096])
        #expect(small.errors.isEmpty)
        #expect(small.samples.count == 200)
    }

    @Test func tooManyTracks_isAnError() throws {
        let parts = try fixture.boxes("h264-baseline.mp4")
        var moov = parts[1].bytes
        let raw = Array(moov.readableBytesView)
        let trakAt = try #require(fixture.findBox("trak", in: raw))
        let trakSize = Int(moov.getInteger(at: moov.readerIndex + trakAt, as: UInt32.self)!)
        let trak = moov.getSlice(at: moov.readerIndex + trakAt, length: trakSize)!
        moov.moveReaderIndex(forwardBy: 8)
        var body = moov
        for _ in 0..<65 { body.writeImmutableBuffer(trak) }
        let stream = fixture.joined([parts[0].bytes, bytes([UInt32(8 + body.readableBytes), fourCC("moov")]), body])
        let result = parse(stream, cuts: [1 << 20])
        #expect(result.errors.map(\.code) == [.invalidField])
        #expect(result.errors.first?.message == "moov declares more than 64 tracks")
    }

    @Test func childBoxSizes_thatPassTheirParent_areInvalid() throws {
        let initSegment = try initAndFragment().initSegment
        for child in [bytes([UInt32(4096), fourCC("tfhd")]), bytes([UInt32(1), fourCC("tfhd"), UInt64(Int64.max)]),
                      bytes([UInt32(1), fourCC("tfhd"), UInt64.max]), bytes([UInt32(7), fourCC("tfhd")])] {
            var traf = child
            traf.writeBytes(Array(repeating: 0, count: 8))
            var moof = bytes([UInt32(16), fourCC("mfhd"), UInt32(0), UInt32(5), UInt32(8 + traf.readableBytes), fourCC("traf")])
            moof.writeImmutableBuffer(traf)
            let stream = fixture.joined([initSegment, bytes([UInt32(8 + moof.readableBytes), fourCC("moof")]), moof,
                                         bytes([UInt32(8), fourCC("mdat")])])
            let result = parse(stream, cuts: [64])
            #expect(result.errors.map(\.code) == [.invalidBoxHeader])
        }
    }
}
