import Camflow
import CMosquitto
import Logging
import NIOCore

/// What libmosquitto's callbacks do, on the client's network thread: a
/// connection made or lost, a message received; failures and drops logged
/// once, not once a retry or a message.
extension MQTTClient {
    func connected(_ code: Int32) {
        guard code == 0 else {
            state.withLock { $0.reported = true }
            if configuration.protocolVersion == .v5, code == Int32(MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION.rawValue) {
                noteFailure("\(configuration.broker) does not speak MQTT 5; set 'protocol: 3.1.1' for it (then a message over the size limit is dropped only after it arrived whole)")
                return
            }
            let describe = configuration.protocolVersion == .v5 ? api.reasonString : api.connackString
            let reason = describe(code).map { String(cString: $0) } ?? "refused (\(code))"
            noteFailure("\(configuration.broker) refused the connection: \(reason)")
            return
        }
        state.withLock { state in
            state.flushing = true
            state.lastFailure = nil
            state.failures = 0
        }
        logger.info("connected to MQTT broker \(configuration.broker)")
        for topic in configuration.subscriptions {
            let result = api.subscribe(handle, nil, topic, configuration.subscriptionQoS)
            if result != MOSQ_ERR_SUCCESS.rawValue {
                logger.error("cannot subscribe to '\(topic)': \(LibMosquitto.describe(result))")
            }
        }
        // "online" first, then what waited, in order, until nothing is left; only then are
        // new messages sent at once.
        if let online = configuration.online { _ = send(online) }
        while true {
            let waiting = state.withLock { state -> [Message] in
                if state.outbox.isEmpty {
                    state.flushing = false
                    state.connected = true
                    return []
                }
                defer { state.outbox = [] }
                return state.outbox
            }
            if waiting.isEmpty { break }
            for message in waiting { _ = send(message) }
        }
        eventSink.yield(.connected)
    }

    func disconnected(_ code: Int32) {
        let (wasConnected, drained) = state.withLock { state in
            let wasConnected = state.connected && !state.stopped
            state.connected = false
            state.flushing = false
            // What was in flight is resent by libmosquitto (QoS 1, 2) or lost (QoS 0): nothing to wait for.
            state.unsent = 0
            return (wasConnected, state.takeDrainWaiters())
        }
        for waiter in drained { waiter.fire() }
        guard wasConnected else { return }
        state.withLock { $0.reported = true }
        let reason = LibMosquitto.describe(code)
        logger.warning("lost MQTT broker \(configuration.broker): \(reason); reconnecting")
        eventSink.yield(.disconnected(reason: reason))
    }

    /// Logs a connection failure when it differs from the last one, so a
    /// broker that stays down is one line, not one per retry.
    func noteFailure(_ text: String) {
        let isNew = state.withLock { state in
            defer { state.lastFailure = text }
            return state.lastFailure != text
        }
        if isNew { logger.warning("\(text)") }
    }

    func received(_ message: mosquitto_message) {
        guard let topic = message.topic.map({ String(cString: $0) }) else { return }
        guard message.payloadlen <= configuration.maxPayload else {
            droppedReceivedCount.add(1, ordering: .relaxed)
            noteDropped("over the \(configuration.maxPayload)-byte limit (the last \(message.payloadlen) bytes on '\(UntrustedText.printable(topic))')")
            return
        }
        var payload = ByteBuffer()
        if let bytes = message.payload, message.payloadlen > 0 {
            payload.writeBytes(UnsafeRawBufferPointer(start: bytes, count: Int(message.payloadlen)))
        }
        if case .dropped = messageSink.yield(Message(topic: topic, payload: payload, qos: message.qos, retain: message.retain)) {
            droppedReceivedCount.add(1, ordering: .relaxed)
            noteDropped("because the pipeline was behind (the oldest waiting went)")
        }
    }

    /// Warns of dropped received messages at once, then at most once a
    /// minute with how many went since: a flood is a line a minute.
    func noteDropped(_ why: String) {
        let now = clock.now
        let count: Int? = state.withLock { state in
            state.unreportedDrops += 1
            if let last = state.lastDropWarning, now - last < .seconds(60) { return nil }
            state.lastDropWarning = now
            defer { state.unreportedDrops = 0 }
            return state.unreportedDrops
        }
        if let count { logger.warning("dropped \(count) MQTT message(s) from \(configuration.broker), the last \(why)") }
    }
}
