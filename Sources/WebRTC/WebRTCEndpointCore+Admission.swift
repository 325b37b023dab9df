import Camflow
import WebRTCProtocol

/// Who may start a WHEP session. Slots are few (`maxSessions`, a quarter
/// of them per client), and a session holds one from its answer until its
/// handshake deadline even if the peer never comes: so when the slots are
/// full, a new offer takes the slot of the oldest session that has not
/// connected within `pendingGrace`, and only connected or young sessions
/// make it wait. Offers alone then hold the slots for seconds, not for the
/// whole handshake timeout, and a page reloaded many times does not lock
/// its user out.
extension WebRTCEndpointCore {
    enum Admission {
        case refuse(WHEPRefusal)
        /// Admitted; the session to close first to make room, if any.
        case admit(evicting: String?)
    }

    func admission(stream: String, client: String?) -> Admission {
        guard let media = streams[stream] else {
            return .refuse(WHEPRefusal(status: 404, "no stream '\(UntrustedText.printable(stream, limit: 100))' with video here"))
        }
        if media.track.codec == .h265 {
            return .refuse(WHEPRefusal(status: 406, "this stream is H.265, which camflow's WebRTC does not send; use MSE"))
        }
        if media.track.hasBFrames {
            return .refuse(WHEPRefusal(status: 406, "this stream has B-frames, which browsers' WebRTC decoders do not take; use MSE"))
        }
        if let client {
            let own = peers.values.filter { $0.client == client }
            if own.count >= configuration.maxSessionsPerClient {
                guard let stale = oldestPending(among: own) else {
                    return .refuse(WHEPRefusal(status: 429, "\(configuration.maxSessionsPerClient) WebRTC sessions from this address already, the most one client may hold; DELETE one first"))
                }
                return .admit(evicting: stale)
            }
        }
        guard peers.count >= configuration.maxSessions else { return .admit(evicting: nil) }
        guard let stale = oldestPending(among: Array(peers.values)) else {
            return .refuse(WHEPRefusal(status: 503, "\(configuration.maxSessions) WebRTC sessions at once, the most this web sink serves"))
        }
        return .admit(evicting: stale)
    }

    /// The oldest session among `sessions` answered at least `pendingGrace` ago and still not connected.
    private func oldestPending(among sessions: [WebRTCPeer]) -> String? {
        let cutoff = now - configuration.pendingGrace
        return sessions.filter { !$0.isConnected && $0.ice.answeredAt <= cutoff }.min { $0.ice.answeredAt < $1.ice.answeredAt }?.id
    }
}
