import Crypto
import NIOCore
import WebRTCProtocol

/// What arrives on the WebRTC port as STUN: the message reader, the ICE
/// check under fixed credentials and the ICE-lite state it feeds. Whatever
/// reads must write back: the attributes signed again under the session's
/// password read back equal, verify, and pass the check when they should.
func fuzzSTUN(_ bytes: UnsafeRawBufferPointer) {
    let datagram = ByteBuffer(bytes: bytes)
    _ = WebRTCDemux.classify(datagram)
    _ = STUNMessage.looksLikeSTUN(datagram)
    guard let message = try? STUNMessage(parsing: datagram) else { return }
    _ = (message.method, message.messageClass, message.username, message.priority, message.iceControlling, message.errorCode)
    _ = message.verifyFingerprint()
    let check = STUNRequestCheck(localUfrag: "camFLOW1", localPassword: "abcdefghijklmnopqrstuvwx", remoteUfrag: "Xq3k")
    var state = ICELiteState<Int>(answeredAt: .zero)
    if let checked = try? check.check(message) {
        guard message.verifyIntegrity(key: check.key) else { fatalError("a check passed without a valid MESSAGE-INTEGRITY") }
        state.receive(checked, from: Int(bytes.count), at: .seconds(1))
        guard state.selected == bytes.count else { fatalError("an accepted check selected nothing") }
    }
    if let mapped = message.xorMappedAddress {
        let response = STUNMessageWriter.bindingSuccess(transactionID: message.transactionID, mapped: mapped, key: check.key)
        guard let read = try? STUNMessage(parsing: response), read.xorMappedAddress == mapped,
              read.verifyIntegrity(key: check.key), read.verifyFingerprint() == true
        else { fatalError("a Binding success response does not read back") }
    }

    // Sign the same attributes again.
    let kept = message.attributes.filter {
        $0.type != STUNAttributeType.messageIntegrity && $0.type != STUNAttributeType.fingerprint
    }
    var writer = STUNMessageWriter(type: message.type, transactionID: message.transactionID)
    do {
        for attribute in kept { try writer.append(attribute.type, Array(attribute.value.readableBytesView)) }
        try writer.appendMessageIntegrity(key: check.key)
        try writer.appendFingerprint()
    } catch {
        return  // over the size bound once signed
    }
    guard let again = try? STUNMessage(parsing: writer.bytes) else { fatalError("a message written does not read back") }
    let readBack = again.attributes.filter {
        $0.type != STUNAttributeType.messageIntegrity && $0.type != STUNAttributeType.fingerprint
    }
    guard readBack.count == kept.count, zip(readBack, kept).allSatisfy({ $0.type == $1.type && $0.value == $1.value }),
          again.verifyIntegrity(key: check.key), again.verifyFingerprint() == true, again.transactionID == message.transactionID
    else { fatalError("a message written does not read back the same") }
    let shouldPass = again.isBindingRequest && again.username == "camFLOW1:Xq3k" && again.iceControlled == nil
    guard (try? check.check(again)) != nil || !shouldPass else { fatalError("a signed check for this session was refused") }
}
