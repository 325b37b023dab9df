import CZeroMQ
import Foundation
import Synchronization
public import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A libzmq failure: the operation, errno and libzmq's text for it.
public struct ZMQError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32
    /// Said instead of the errno's text (libzmq could not be loaded).
    private let reason: String?

    init(_ operation: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.errno = errno
        self.reason = nil
    }

    /// libzmq is missing or too old: `reason` says which and what to do.
    init(missingLibrary reason: String) {
        operation = "loading libzmq"
        errno = ELIBACC
        self.reason = reason
    }

    public var description: String {
        if let reason { return "\(operation) failed: \(reason)" }
        return "\(operation) failed: \(LibZMQ.describe(errno)) (errno \(errno))"
    }

    /// The call would have blocked (no message waiting, or the high-water mark reached).
    var wouldBlock: Bool { errno == EAGAIN }
}

/// A libzmq context. One per process is plenty; it is thread-safe.
public final class ZMQContext: @unchecked Sendable {
    // libzmq contexts are documented as thread-safe.
    /// nil when libzmq could not be loaded; sockets then fail with the reason.
    let handle: UnsafeMutableRawPointer?

    public static let shared = ZMQContext()

    private let terminated = Mutex(false)

    public init() {
        handle = LibZMQ.loadError == nil ? LibZMQ.api.ctxNew() : nil
    }

    deinit { terminate() }

    /// Ends the context: blocks until every socket is closed and their
    /// pending messages went out (or their linger time passed).
    public func terminate() {
        guard !terminated.withLock({ done in defer { done = true }; return done }) else { return }
        if let handle { _ = LibZMQ.api.ctxTerm(handle) }
    }

    /// The libzmq version, such as `4.3.4`; `unavailable` when it cannot be loaded.
    public static var version: String {
        guard case .success(let libzmq) = LibZMQ.loaded else { return "unavailable" }
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        libzmq.version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// Whether libzmq was built with `capability` (such as `curve`); false when it cannot be loaded.
    public static func has(_ capability: String) -> Bool {
        guard case .success(let libzmq) = LibZMQ.loaded else { return false }
        return libzmq.has(capability) != 0
    }
}

/// One ZeroMQ socket. Not thread-safe, like the libzmq socket under it:
/// create, use and close it in one task (or thread).
public final class ZMQSocket {
    public enum Kind: Int32, Sendable {
        case pub, sub, xpub, xsub, pull, push, pair, rep
        var raw: Int32 {
            switch self {
            case .rep: ZMQ_REP
            case .pub: ZMQ_PUB
            case .sub: ZMQ_SUB
            case .xpub: ZMQ_XPUB
            case .xsub: ZMQ_XSUB
            case .pull: ZMQ_PULL
            case .push: ZMQ_PUSH
            case .pair: ZMQ_PAIR
            }
        }
    }

    let handle: UnsafeMutableRawPointer
    private var closed = false

    public init(_ kind: Kind, context: ZMQContext = .shared) throws(ZMQError) {
        guard let contextHandle = context.handle else {
            throw LibZMQ.loadError ?? ZMQError(missingLibrary: "libzmq gave no context")
        }
        guard let socket = LibZMQ.api.socket(contextHandle, kind.raw) else { throw ZMQError("zmq_socket") }
        handle = socket
    }

    deinit { close() }

    /// Closes now; pending messages go out for up to the `linger` time.
    public func close() {
        guard !closed else { return }
        closed = true
        _ = LibZMQ.api.close(handle)
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        guard LibZMQ.api.bind(handle, endpoint) == 0 else { throw ZMQError("zmq_bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        guard LibZMQ.api.connect(handle, endpoint) == 0 else { throw ZMQError("zmq_connect \(endpoint)") }
    }

    /// The endpoint last bound, with the real port of a `*` bind.
    public var lastEndpoint: String {
        var buffer = [UInt8](repeating: 0, count: 256)
        var size = buffer.count
        _ = LibZMQ.api.getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    public func set(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var value = value
        guard LibZMQ.api.setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError("zmq_setsockopt \(option)")
        }
    }

    /// Sets a 64-bit option, such as `ZMQ_MAXMSGSIZE`.
    public func set(_ option: Int32, int64 value: Int64) throws(ZMQError) {
        var value = value
        guard LibZMQ.api.setsockopt(handle, option, &value, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError("zmq_setsockopt \(option)")
        }
    }

    public func set(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let result = bytes.withUnsafeBytes { LibZMQ.api.setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard result == 0 else { throw ZMQError("zmq_setsockopt \(option)") }
    }

    public func subscribe(_ prefix: String) throws(ZMQError) { try set(ZMQ_SUBSCRIBE, bytes: Array(prefix.utf8)) }

    /// Sends a multipart message without blocking. Payloads are handed to
    /// libzmq without a copy: each message keeps its `ByteBuffer` alive until
    /// libzmq has sent it. Returns false when libzmq could not take it now
    /// (EAGAIN). A PUB socket never says so: it drops, per subscriber, what
    /// a subscriber at its high-water mark cannot take.
    @discardableResult
    public func send(_ parts: [ByteBuffer]) throws(ZMQError) -> Bool {
        for (index, part) in parts.enumerated() {
            guard try send(part, first: index == 0, more: index < parts.count - 1) else { return false }
        }
        return true
    }

    /// Sends camflow's three-frame message (topic, header, payload) without
    /// an array per message; as ``send(_:)`` otherwise.
    @discardableResult
    public func send(topic: ByteBuffer, header: ByteBuffer, payload: ByteBuffer) throws(ZMQError) -> Bool {
        guard try send(topic, first: true, more: true) else { return false }
        _ = try send(header, first: false, more: true)
        _ = try send(payload, first: false, more: false)
        return true
    }

    /// One frame; false when the first frame of a message could not be queued (EAGAIN).
    private func send(_ part: ByteBuffer, first: Bool, more: Bool) throws(ZMQError) -> Bool {
        var message = zmq_msg_t()
        try Self.initialize(&message, with: part)
        let flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)
        var result = LibZMQ.api.msgSend(&message, handle, flags)
        while result < 0 && errno == EINTR { result = LibZMQ.api.msgSend(&message, handle, flags) }
        if result < 0 {
            let error = ZMQError("zmq_msg_send")
            _ = LibZMQ.api.msgClose(&message)
            // libzmq takes a multipart message whole or not at all: EAGAIN can only come first.
            if error.wouldBlock && first { return false }
            throw error
        }
        return true
    }

    /// A message whose data is `buffer`'s bytes, kept alive by a retained box.
    private static func initialize(_ message: inout zmq_msg_t, with buffer: ByteBuffer) throws(ZMQError) {
        let count = buffer.readableBytes
        // Small parts are cheaper copied than boxed.
        guard count > 256 else {
            guard LibZMQ.api.msgInitSize(&message, count) == 0 else { throw ZMQError("zmq_msg_init_size") }
            buffer.withUnsafeReadableBytes { bytes in
                if count > 0 { LibZMQ.api.msgData(&message)!.copyMemory(from: bytes.baseAddress!, byteCount: count) }
            }
            return
        }
        let box = Unmanaged.passRetained(BufferBox(buffer))
        // The storage does not move while the box holds the buffer unmodified.
        let pointer = buffer.withUnsafeReadableBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
        let result = LibZMQ.api.msgInitData(&message, pointer, count, { _, hint in
            hint.map { Unmanaged<BufferBox>.fromOpaque($0).release() }
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw ZMQError("zmq_msg_init_data")
        }
    }

    /// Receives one multipart message; nil when none is waiting (with `wait: false`)
    /// or the timeout passed. Parts past `maxParts` are received and dropped,
    /// so a peer's million empty parts cost no memory.
    public func receive(timeout: Duration? = nil, maxParts: Int = .max) throws(ZMQError) -> [ByteBuffer]? {
        if let timeout {
            guard try poll(timeout: timeout) else { return nil }
        }
        var parts: [ByteBuffer] = []
        while true {
            var message = zmq_msg_t()
            _ = LibZMQ.api.msgInit(&message)
            defer { _ = LibZMQ.api.msgClose(&message) }
            if LibZMQ.api.msgRecv(&message, handle, ZMQ_DONTWAIT) < 0 {
                let error = ZMQError("zmq_msg_recv")
                // A signal (Ctrl-C reaching this thread) interrupts the call: nothing is lost, ask again.
                if error.errno == EINTR { continue }
                if error.wouldBlock && parts.isEmpty { return nil }
                throw error
            }
            guard parts.count < maxParts else {
                guard LibZMQ.api.msgMore(&message) != 0 else { return parts }
                continue
            }
            let size = LibZMQ.api.msgSize(&message)
            var buffer = ByteBuffer()
            buffer.reserveCapacity(size)
            if size > 0 { buffer.writeBytes(UnsafeRawBufferPointer(start: LibZMQ.api.msgData(&message), count: size)) }
            parts.append(buffer)
            guard LibZMQ.api.msgMore(&message) != 0 else { return parts }
        }
    }

    /// `ZMQ_EVENTS`: whether a message can be received (bit 1) or sent (bit 2).
    /// Reading it also lets the socket process pending commands, such as
    /// sending its subscriptions, without receiving anything.
    public var events: Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        _ = LibZMQ.api.getsockopt(handle, ZMQ_EVENTS, &value, &size)
        return value
    }

    /// Waits until a message can be received, at most `timeout`.
    public func poll(timeout: Duration) throws(ZMQError) -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let milliseconds = Int(max(0, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        while true {
            let ready = LibZMQ.api.poll(&item, 1, milliseconds)
            if ready >= 0 { return ready > 0 }
            let error = ZMQError("zmq_poll")
            // A signal (Ctrl-C) reaching this thread: wait again rather than report nothing.
            guard error.errno == EINTR else { throw error }
        }
    }
}

/// Keeps a `ByteBuffer` alive for libzmq.
private final class BufferBox {
    let buffer: ByteBuffer
    init(_ buffer: ByteBuffer) { self.buffer = buffer }
}

/// Wakes a thread that waits in `zmq_poll` on its sockets: a PAIR socket
/// pair over `inproc://` on the sockets' context, whose receiving end the
/// thread polls with them. The async side sends one byte (new work, room,
/// stop); the thread drains it and looks at the state that changed. Time
/// never wakes the thread: a deadline is the async side's, through its clock.
///
/// `@unchecked Sendable`: the receiving end is used only by the waiting
/// thread, the sending end only by one task at a time (as any libzmq
/// socket); each end is closed by its user or, after both are done, `deinit`.
final class ZMQWakeup: @unchecked Sendable {
    /// The end the waiting thread polls and drains.
    let receiver: ZMQSocket
    private let sender: ZMQSocket

    init(context: ZMQContext = .shared) throws(ZMQError) {
        receiver = try ZMQSocket(.pair, context: context)
        sender = try ZMQSocket(.pair, context: context)
        // A wake-up left unread never holds up the end of the context.
        try receiver.set(ZMQ_LINGER, 0)
        try sender.set(ZMQ_LINGER, 0)
        let endpoint = "inproc://camflow-wakeup-\(UUID().uuidString)"
        try receiver.bind(endpoint)
        try sender.connect(endpoint)
    }

    /// Wakes the thread; never blocks. A full pipe (EAGAIN) holds wake-ups
    /// the thread has yet to read, and one is enough; once the thread has
    /// closed its end, nothing waits to be woken.
    func wake() {
        _ = try? sender.send([Self.byte])
    }

    /// Reads every wake-up waiting: the thread looks at the state once for all of them.
    func drain() {
        while (try? receiver.receive()) != nil {}
    }

    private static let byte = ByteBuffer(bytes: [1])
}

/// `zmq_poll` on a few sockets (a node's and its ``ZMQWakeup``'s), without
/// a timeout: the thread sleeps until a socket has a message.
struct ZMQPollSet {
    private var items: [zmq_pollitem_t]

    /// Listens for messages on every socket of `sockets` at first.
    init(_ sockets: [ZMQSocket]) {
        items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
    }

    /// Blocks until a socket listened to has a message.
    mutating func wait() throws(ZMQError) {
        while true {
            let count = Int32(items.count)
            let ready = items.withUnsafeMutableBufferPointer { LibZMQ.api.poll($0.baseAddress, count, -1) }
            if ready >= 0 { return }
            let error = ZMQError("zmq_poll")
            // A signal (Ctrl-C) reaching this thread: wait again.
            guard error.errno == EINTR else { throw error }
        }
    }

    /// Whether the socket at `index` had a message when ``wait()`` returned.
    func hasMessage(_ index: Int) -> Bool { items[index].revents & Int16(ZMQ_POLLIN) != 0 }
}
