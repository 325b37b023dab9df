public import Camflow
public import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child's standard streams as NIO pipe channels on the shared event loop
/// group: writes to stdin complete when the pipe took them, stdout and
/// stderr arrive as buffers with backpressure (a consumer that lags stops
/// the reads, and the child then waits in its writes). No thread of its own
/// waits on a pipe. `exec` runs its children through them, the snapshot
/// service its decoder.
public struct ChildPipes: Sendable {
    public let stdin: any Channel
    public let stdout: NIOAsyncChannel<ByteBuffer, Never>
    public let stderr: NIOAsyncChannel<ByteBuffer, Never>

    /// Bytes a pipe of the packet path holds (the kernel's default is 64 KiB,
    /// its limit for a user 1 MiB: /proc/sys/fs/pipe-max-size), and the most
    /// one read takes: a megabyte packet crosses in one write and one read,
    /// not sixteen wake-ups of the event loop and of the child.
    public static let packetPipeSize = 1 << 20

    /// Children of this process whose pipes may be enlarged at once. The
    /// kernel counts pipe buffers per user, and past
    /// /proc/sys/fs/pipe-user-pages-soft (64 MiB by default) gives every new
    /// pipe of that user 8 KiB: 8 children take at most 16 MiB of it; a
    /// ninth keeps the default size.
    public static let largePipes = Quota(limit: 8)

    /// Places, taken and given back without waiting.
    public final class Quota: Sendable {
        public let limit: Int
        private let used = Atomic<Int>(0)

        public init(limit: Int) {
            self.limit = limit
        }

        /// Takes a place; false when none is free.
        public func take() -> Bool {
            if used.add(1, ordering: .relaxed).newValue <= limit { return true }
            used.subtract(1, ordering: .relaxed)
            return false
        }

        /// Gives back a place ``take()`` took.
        public func giveBack() {
            used.subtract(1, ordering: .relaxed)
        }
    }

    /// Takes `process`'s descriptors; on failure they are closed. With
    /// `largePipes` stdin and stdout hold ``packetPipeSize`` (where the
    /// kernel allows: a user past its pipe quota keeps the default).
    public static func open(_ process: ChildProcess, largePipes: Bool = false) async throws -> ChildPipes {
        let descriptors = process.takeDescriptors()
        var unowned = [descriptors.stdin, descriptors.stdout, descriptors.stderr]
        var opened: [any Channel] = []
        let group = MultiThreadedEventLoopGroup.singleton
        var writer = NIOPipeBootstrap(group: group), reader = NIOPipeBootstrap(group: group)
        if largePipes {
            // F_SETPIPE_SZ (Linux), which Glibc's module does not export.
            for fd in [descriptors.stdin, descriptors.stdout] { _ = fcntl(fd, 1031, Int32(packetPipeSize)) }
            // Writes queue without waiting up to a pipe's worth (they are the packets' own bytes, no copies).
            writer = writer.channelOption(.writeBufferWaterMark, value: .init(low: packetPipeSize / 2, high: packetPipeSize))
            reader = reader.channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(
                minimum: 64, initial: 64 << 10, maximum: packetPipeSize))
        }
        do {
            // Each descriptor is NIO's from the call that takes it, even when that call fails
            // (it closes it then): never closed twice, a number another thread may have reused.
            unowned.removeFirst()
            let stdin = try await writer.takingOwnershipOfDescriptor(output: descriptors.stdin).get()
            opened.append(stdin)
            unowned.removeFirst()
            let stdout = try await Self.reader(reader, descriptors.stdout)
            opened.append(stdout.channel)
            unowned.removeFirst()
            let stderr = try await Self.reader(NIOPipeBootstrap(group: group), descriptors.stderr)
            return ChildPipes(stdin: stdin, stdout: stdout, stderr: stderr)
        } catch {
            for fd in unowned { _ = close(fd) }
            for channel in opened { try? await channel.close() }
            throw error
        }
    }

    private static func reader(_ bootstrap: NIOPipeBootstrap, _ fd: Int32) async throws -> NIOAsyncChannel<ByteBuffer, Never> {
        try await bootstrap.takingOwnershipOfDescriptor(input: fd) { channel in
            channel.eventLoop.makeCompletedFuture {
                // Two reads ahead of the consumer at most (2 MiB with large pipes), then the child waits.
                try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: channel, configuration: .init(
                    backPressureStrategy: .init(lowWatermark: 1, highWatermark: 2)))
            }
        }
    }
}
