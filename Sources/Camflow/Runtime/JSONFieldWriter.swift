/// Writes JSON fields into memory reserved ahead. A message header is some
/// fifteen fields; written through `ByteBuffer` each key, quote and number
/// costs a capacity, uniqueness and exclusivity check, which made the header
/// most of `zmq-publish`'s time per small packet. Here one reservation covers
/// the whole header and every write is a bounds check and a copy.
struct JSONFieldWriter: ~Copyable {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    /// Bytes written so far.
    private(set) var count = 0
    /// No field written yet: the next one needs no comma.
    private(set) var empty: Bool

    init(_ memory: UnsafeMutableRawBufferPointer, empty: Bool) {
        base = memory.baseAddress!
        capacity = memory.count
        self.empty = empty
    }

    /// The bytes a quoted string takes at most: every byte escaped as `\u00XX`.
    static func quotedBound(_ string: String) -> Int { 2 + 6 * string.utf8.count }

    /// The bytes a number takes at most: a sign and 19 digits.
    static let decimalBound = 20

    /// The bytes `field(key)` takes: the comma, two quotes, the colon.
    static func fieldBound(_ key: StaticString) -> Int { key.utf8CodeUnitCount + 4 }

    private mutating func byte(_ value: UInt8) {
        precondition(count < capacity, "JSON field writer: reservation exceeded")
        base.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    private mutating func bytes(_ source: UnsafeRawBufferPointer) {
        precondition(source.count <= capacity - count, "JSON field writer: reservation exceeded")
        if let address = source.baseAddress { (base + count).copyMemory(from: address, byteCount: source.count) }
        count += source.count
    }

    /// `,"key":` (no comma before the first field).
    mutating func field(_ key: StaticString) {
        if !empty { byte(UInt8(ascii: ",")) }
        empty = false
        byte(UInt8(ascii: "\""))
        bytes(UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        byte(UInt8(ascii: "\""))
        byte(UInt8(ascii: ":"))
    }

    /// A JSON string. Swift strings are valid UTF-8, so escaping byte by byte
    /// (quote, backslash, control characters) keeps every other character whole.
    mutating func string(_ value: String) {
        byte(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            if utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
                bytes(UnsafeRawBufferPointer(utf8))
            } else {
                for unit in utf8 { escaped(unit) }
            }
        }
        byte(UInt8(ascii: "\""))
    }

    private mutating func escaped(_ unit: UInt8) {
        switch unit {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            byte(UInt8(ascii: "\\"))
            byte(unit)
        case UInt8(ascii: "\n"): byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "t"))
        case ..<0x20:
            let hex: StaticString = "0123456789abcdef"
            byte(UInt8(ascii: "\\"))
            byte(UInt8(ascii: "u"))
            byte(UInt8(ascii: "0"))
            byte(UInt8(ascii: "0"))
            byte(hex.utf8Start[Int(unit >> 4)])
            byte(hex.utf8Start[Int(unit & 0xF)])
        default: byte(unit)
        }
    }

    /// The decimal digits of `value`.
    mutating func decimal(_ value: Int64) {
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 20 digits at most, 24 bytes of room
        withUnsafeMutableBytes(of: &digits) { room in
            var end = room.count
            repeat {
                end -= 1
                room[end] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                end -= 1
                room[end] = UInt8(ascii: "-")
            }
            bytes(UnsafeRawBufferPointer(rebasing: room[end...]))
        }
    }

    mutating func bool(_ value: Bool) {
        let text: StaticString = value ? "true" : "false"
        bytes(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}
