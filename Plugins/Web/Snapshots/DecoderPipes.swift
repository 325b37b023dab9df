import Camflow
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A decoder's standard streams as NIO channels on the shared event loop
/// group: the write to stdin completes when the pipe took it, stdout and
/// stderr arrive as buffers. No thread waits on a pipe.
struct DecoderPipes: Sendable {
    let stdin: any Channel
    let stdout: NIOAsyncChannel<ByteBuffer, Never>
    let stderr: NIOAsyncChannel<ByteBuffer, Never>

    /// Takes `child`'s descriptors; on failure they are closed.
    static func open(_ child: ChildProcess) async throws -> DecoderPipes {
        let descriptors = child.takeDescriptors()
        var unowned = [descriptors.stdin, descriptors.stdout, descriptors.stderr]
        var opened: [any Channel] = []
        let bootstrap = NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        do {
            let stdin = try await bootstrap.takingOwnershipOfDescriptor(output: descriptors.stdin).get()
            unowned.removeFirst()
            opened.append(stdin)
            let stdout = try await reader(bootstrap, descriptors.stdout)
            unowned.removeFirst()
            opened.append(stdout.channel)
            let stderr = try await reader(bootstrap, descriptors.stderr)
            return DecoderPipes(stdin: stdin, stdout: stdout, stderr: stderr)
        } catch {
            for fd in unowned { _ = close(fd) }
            for channel in opened { try? await channel.close() }
            throw error
        }
    }

    private static func reader(_ bootstrap: NIOPipeBootstrap, _ fd: Int32) async throws -> NIOAsyncChannel<ByteBuffer, Never> {
        try await bootstrap.takingOwnershipOfDescriptor(input: fd) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: channel)
            }
        }
    }
}
