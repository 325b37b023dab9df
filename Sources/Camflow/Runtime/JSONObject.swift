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

    /// Writes fields through a ``JSONFieldWriter`` into `bound` bytes reserved
    /// at once: the message header's fast path. `bound` must cover what
    /// `write` writes (the writer traps rather than overrun it).
    mutating func writeFields(reserving bound: Int, _ write: (inout JSONFieldWriter) -> Void) {
        var empty = self.empty
        body.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { memory in
            var writer = JSONFieldWriter(memory, empty: empty)
            write(&writer)
            empty = writer.empty
            return writer.count
        }
        self.empty = empty
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
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: JSONFieldWriter.decimalBound) { memory in
            var writer = JSONFieldWriter(memory, empty: true)
            writer.decimal(value)
            return writer.count
        }
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
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: JSONFieldWriter.quotedBound(string)) { memory in
            var writer = JSONFieldWriter(memory, empty: true)
            writer.string(string)
            return writer.count
        }
    }
}
