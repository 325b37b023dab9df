/// How one connection of a camera source ended.
public enum CameraSessionEnd: Sendable, CustomStringConvertible {
    /// The node is stopping: no reconnection.
    case stopped
    /// The camera refused the credentials; `status` in its `scheme` ("HTTP 401", "RTSP 401").
    case authenticationFailed(status: Int, scheme: String)
    /// The connection ended; `deliveredMedia` when it got as far as media,
    /// which resets the backoff and makes the next media a discontinuity.
    case ended(reason: String, deliveredMedia: Bool)

    public var description: String {
        switch self {
        case .stopped: "stopped"
        case .authenticationFailed(let status, let scheme): "the camera refused the credentials (\(scheme) \(status))"
        case .ended(let reason, _): reason
        }
    }
}

/// What every camera source does between its connections, the same for
/// every camera protocol so operators meet one behaviour: exponential
/// backoff with jitter, reset once a session delivered media; a refused
/// login told as an `auth-failed` event; after `authRetryAfter` refusals in
/// a row, said once and then tried only every `authRetryInterval`, because
/// cameras lock an account that keeps failing; the node fails when the
/// backoff's attempts run out. Its options are ``options``, declared by
/// each camera node.
public struct CameraReconnectLoop: Sendable {
    public var backoff: ReconnectBackoff
    public let authRetryAfter: Int
    public let authRetryInterval: Duration

    /// The options behind this loop, for a camera node's declaration.
    public static let options: [OptionSpec] = [
        OptionSpec("reconnect-min", .duration, default: "1s", "First wait before reconnecting."),
        OptionSpec("reconnect-max", .duration, default: "30s", "Longest wait between reconnects."),
        OptionSpec("reconnect-attempts", .integer, min: "1", "Failed attempts in a row before the node fails; unlimited when unset."),
        OptionSpec("auth-retry-after", .integer, default: "3", min: "1",
                   "Refused logins in a row after which camflow tries only every 'auth-retry-interval', so the camera does not lock the account."),
        OptionSpec("auth-retry-interval", .duration, default: "5m", "Wait between login attempts once the credentials were refused that often."),
    ]

    public init(backoff: ReconnectBackoff, authRetryAfter: Int, authRetryInterval: Duration) {
        self.backoff = backoff
        self.authRetryAfter = authRetryAfter
        self.authRetryInterval = authRetryInterval
    }

    /// Reads ``options``.
    public init(_ options: NodeOptions) throws {
        self.init(backoff: ReconnectBackoff(minimum: try options.duration("reconnect-min"),
                                            maximum: try options.duration("reconnect-max"),
                                            maxAttempts: try options.ifSet("reconnect-attempts", options.integer)),
                  authRetryAfter: try options.integer("auth-retry-after"),
                  authRetryInterval: try options.duration("auth-retry-interval"))
    }

    /// Connects with `session` until the node stops or the attempts run out
    /// (then throws ``CameraGaveUp``). `session` gets whether its media
    /// follows a lost connection (a discontinuity); `sessionEnded` runs after
    /// each one, before it is told; `emit` sends the node's events.
    /// `endpoint` is printed: it must hold no credentials.
    public func run(_ context: NodeContext, endpoint: String,
                    session: (_ discontinuity: Bool) async -> CameraSessionEnd,
                    sessionEnded: () -> Void = {},
                    emit: (_ name: String, _ fields: [(key: String, value: EventValue)]) async -> Void) async throws
    {
        var backoff = self.backoff
        var discontinuity = false
        var refusedLogins = 0
        while !Task.isCancelled {
            let end = await session(discontinuity)
            context.stats.setConnected(false)
            sessionEnded()
            switch end {
            case .stopped:
                return
            case .authenticationFailed(let status, let scheme):
                refusedLogins += 1
                let fields: [(key: String, value: EventValue)] = [("status", .int(Int64(status))), ("url", .string(endpoint))]
                if refusedLogins < authRetryAfter {
                    context.logger.error("camera \(endpoint) refused the credentials (\(scheme) \(status))")
                    await emit("auth-failed", fields)
                } else if refusedLogins == authRetryAfter {
                    // Said once: from now on it is tried rarely.
                    context.logger.error("camera \(endpoint) refused the credentials \(refusedLogins) times in a row (\(scheme) \(status)); trying again every \(authRetryInterval.shortDescription) so the account is not locked: check 'username' and 'password'")
                    await emit("auth-failed", fields + [("retry-every", .string(authRetryInterval.shortDescription))])
                } else {
                    context.logger.debug("camera \(endpoint) refused the credentials again (\(scheme) \(status))")
                }
            case .ended(let reason, let deliveredMedia):
                context.logger.warning("camera \(endpoint): \(reason)")
                await emit("disconnected", [("reason", .string(reason)), ("url", .string(endpoint))])
                if deliveredMedia {
                    backoff.reset()
                    discontinuity = true
                    refusedLogins = 0
                }
            }
            // Jitter (half to full delay) spreads the reconnects of many cameras after a shared outage.
            guard var delay = backoff.next(random: Double.random(in: 0...1)) else {
                throw CameraGaveUp(message: "gave up on camera \(endpoint) after \(backoff.failures - 1) failed attempts: \(end)")
            }
            if refusedLogins >= authRetryAfter { delay = authRetryInterval * Double.random(in: 0.9...1.1) }
            context.logger.info("reconnecting to \(endpoint) in \(delay.shortDescription)")
            do { try await context.clock.sleep(for: delay) } catch { return }
        }
    }
}

/// A camera could not be reached within the allowed attempts: the node fails with this.
public struct CameraGaveUp: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
