import Camflow
import CMosquitto

/// The client's network thread: connecting, libmosquitto's loop, and the
/// backoff between connections.
extension MQTTClient {
    /// The network thread: connects (with MQTT 5, announcing the largest
    /// packet it takes), runs libmosquitto's loop and, whatever ended a
    /// connection, waits (1 s, doubling up to the reconnect delay's maximum;
    /// a stop ends the wait at once) and connects again until stopped.
    /// libmosquitto's own loop_forever would end for good on what it deems
    /// fatal, so one malformed packet from a broker (or whoever answers in
    /// its place) would end MQTT until camflow restarts.
    func runNetwork() async {
        let broker = configuration.broker
        let keepAlive = Int32(clamping: max(5, configuration.keepAlive.components.seconds))
        var properties: OpaquePointer?
        defer { api.propertyFreeAll(&properties) }
        if configuration.protocolVersion == .v5 {
            _ = api.propertyAddInt32(&properties, Int32(MQTT_PROP_MAXIMUM_PACKET_SIZE.rawValue), UInt32(configuration.maximumPacketSize))
        }
        // libmosquitto keeps the properties and sends them on every reconnection.
        var code = api.connectBindV5(handle, broker.host, Int32(broker.port), keepAlive, nil, properties)
        // A stop sets the flag before it queues the goodbye, whose write wakes a loop under way.
        while !isStopped {
            if code == MOSQ_ERR_SUCCESS.rawValue {
                code = api.loop(handle, Self.loopTimeout, 1)
                if code == MOSQ_ERR_SUCCESS.rawValue { continue }
            }
            if isStopped { break }
            let (reported, failures) = state.withLock { state in
                defer {
                    state.reported = false
                    state.failures += 1
                }
                return (state.reported, state.failures)
            }
            if !reported { noteFailure("cannot connect to \(broker): \(LibMosquitto.describe(code)); retrying") }
            let first = max(Duration.seconds(1), configuration.reconnectDelay.first)
            let delay = min(first * (1 << min(failures, 20)), max(first, configuration.reconnectDelay.max))
            await backoff(delay)
            if isStopped { break }
            code = api.reconnect(handle)
        }
        // Stopped: the goodbye goes after what was queued before it (an "offline" message).
        _ = api.disconnect(handle)
        let deadline = clock.now + .seconds(1)
        // Until the goodbye is written (the loop then reports no connection) or a second passed.
        while true {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { break }
            let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
            guard api.loop(handle, Int32(clamping: max(1, milliseconds)), 1) == MOSQ_ERR_SUCCESS.rawValue else { break }
        }
    }

    /// Waits `delay` on the clock, or until the client is stopped.
    func backoff(_ delay: Duration) async {
        let (clock, stopSignal) = (self.clock, self.stopSignal)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(for: delay) }
            group.addTask { await stopSignal.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}
