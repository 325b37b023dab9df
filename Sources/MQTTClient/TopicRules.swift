/// MQTT's rules for topic names and filters, checked where options are read
/// so a bad topic is a configuration error with its reason, not a log line
/// per reconnection. Beyond the specification, what libmosquitto refuses
/// (control characters) is refused too, and U+0000, which would cut the
/// topic short where it is handed to C.
public enum MQTTTopicRules {
    /// Why `name` cannot be published to, or nil when it can.
    public static func nameProblem(_ name: String) -> String? {
        if let problem = commonProblem(name) { return problem }
        if name.contains(where: { $0 == "+" || $0 == "#" }) { return "a topic to publish to holds no wildcard (+ or #)" }
        return nil
    }

    /// Why `filter` cannot be subscribed to, or nil when it can.
    public static func filterProblem(_ filter: String) -> String? {
        if let problem = commonProblem(filter) { return problem }
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        for (index, level) in levels.enumerated() {
            if level.contains("#"), level != "#" || index != levels.count - 1 {
                return "'#' stands alone, as the last level (a/#)"
            }
            if level.contains("+"), level != "+" { return "'+' stands alone in its level (a/+/b)" }
        }
        return nil
    }

    private static func commonProblem(_ topic: String) -> String? {
        guard (1...65535).contains(topic.utf8.count) else { return "a topic is 1 to 65535 bytes" }
        if topic.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            return "a topic holds no control character (nor U+0000)"
        }
        return nil
    }
}
