#ifndef CWEBRTC_H
#define CWEBRTC_H
/* DTLS-SRTP for camflow's WebRTC: OpenSSL 3 and libsrtp2, loaded with
   dlopen on first use. Only opaque types cross this header, so Swift never
   sees OpenSSL's type names next to BoringSSL's (swift-nio-ssl). */
#include <stddef.h>
#include <stdint.h>

int cf_webrtc_placeholder(void);

#endif
