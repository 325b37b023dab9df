import Camflow
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A child's standard streams as NIO pipe channels on the shared event loop
/// group: writes to stdin complete when the pipe took them, stdout and
/// stderr arrive as buffers with backpressure (a consumer that lags stops
/// the reads, and the child then waits in its writes). No thread of its own
/// waits on a pipe. The same as the snapshot decoder's `DecoderPipes`
/// (WebPlugin): both want one home in a module with NIOPosix that both link.
struct ChildPipes: Sendable {
    let stdin: any Channel
    let stdout: NIOAsyncChannel<ByteBuffer, Never>
    let stderr: NIOAsyncChannel<ByteBuffer, Never>

    /// Takes `process`'s descriptors; on failure they are closed.
    static func open(_ process: ChildProcess) async throws -> ChildPipes {
        let descriptors = process.takeDescriptors()
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
                try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: channel)
            }
        }
    }
}
