public import NIOCore

/// Builds one JSON object, keys in insertion order, straight into a
/// `ByteBuffer`: log lines and message headers without Foundation and, when
/// reused with ``reset()``, without allocating per packet.
public struct JSONObject: Sendable {
    /// The object's bytes so far (without the closing brace until ``finish()``).
    private var body: ByteBuffer
    private var empty = true

    public init(capacity: Int = 256) {
        body = ByteBuffer()
        body.reserveCapacity(capacity)
        body.writeInteger(UInt8(ascii: "{"))
    }

    /// Starts over, keeping the memory.
    public mutating func reset() {
        body.clear()
        body.writeInteger(UInt8(ascii: "{"))
        empty = true
    }

    /// The finished object as bytes.
    public var bytes: ByteBuffer {
        var copy = body
        copy.writeInteger(UInt8(ascii: "}"))
        return copy
    }

    /// Closes the object and returns its bytes without copying them; call
    /// ``reset()`` before building the next one.
    public mutating func finish() -> ByteBuffer {
        body.writeInteger(UInt8(ascii: "}"))
        return body
    }

    /// The finished object as text.
    public var text: String { String(buffer: bytes) }

    private mutating func key(_ key: String) {
        if !empty { body.writeInteger(UInt8(ascii: ",")) }
        empty = false
        Self.quote(key, into: &body)
        body.writeInteger(UInt8(ascii: ":"))
    }

    /// A key camflow names itself, written without the escape scan a key
    /// from outside needs: the message header's fields.
    mutating func field(_ key: StaticString) {
        if !empty { body.writeInteger(UInt8(ascii: ",")) }
        empty = false
        body.writeInteger(UInt8(ascii: "\""))
        body.writeStaticString(key)
        body.writeInteger(UInt16(0x223A))  // the closing quote and the colon
    }

    mutating func append(field key: StaticString, _ value: String?) {
        guard let value else { return }
        field(key)
        Self.quote(value, into: &body)
    }

    mutating func append(field key: StaticString, _ value: Int64?) {
        guard let value else { return }
        field(key)
        Self.writeDecimal(value, into: &body)
    }

    mutating func append(field key: StaticString, _ value: Bool?) {
        guard let value else { return }
        field(key)
        body.writeStaticString(value ? "true" : "false")
    }

    public mutating func append(_ key: String, _ value: String?) {
        guard let value else { return }
        self.key(key)
        Self.quote(value, into: &body)
    }

    public mutating func append(_ key: String, _ value: Int64?) {
        guard let value else { return }
        self.key(key)
        Self.writeDecimal(value, into: &body)
    }

    /// The decimal digits of `value`, written without making a String.
    static func writeDecimal(_ value: Int64, into out: inout ByteBuffer) {
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 20 digits at most, 24 bytes of room
        let count = withUnsafeMutableBytes(of: &digits) { room -> Int in
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
            out.writeBytes(UnsafeRawBufferPointer(rebasing: room[end...]))
            return room.count - end
        }
        _ = count
    }

    public mutating func append(_ key: String, _ value: Double?) {
        guard let value else { return }
        self.key(key)
        body.writeString(value.isFinite ? value.formatted(maxFractionDigits: 6) : "null")
    }

    public mutating func append(_ key: String, _ value: Bool?) {
        guard let value else { return }
        self.key(key)
        body.writeStaticString(value ? "true" : "false")
    }

    public mutating func append(_ key: String, _ value: EventValue) {
        switch value {
        case .string(let s): append(key, s)
        case .int(let i): append(key, i)
        case .double(let d): append(key, d)
        case .bool(let b): append(key, b)
        }
    }

    /// A nested object.
    public mutating func append(_ key: String, object: JSONObject) {
        self.key(key)
        var nested = object.bytes
        body.writeBuffer(&nested)
    }

    static func quote(_ string: String, into out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "\""))
        // Fast path: nothing to escape, the UTF-8 goes as it is.
        if string.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            out.writeString(string)
        } else {
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": out.writeStaticString("\\\"")
                case "\\": out.writeStaticString("\\\\")
                case "\n": out.writeStaticString("\\n")
                case "\r": out.writeStaticString("\\r")
                case "\t": out.writeStaticString("\\t")
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out.writeString("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                default: out.writeString(String(scalar))
                }
            }
        }
        out.writeInteger(UInt8(ascii: "\""))
    }
}
