#ifndef CWEBRTC_H
#define CWEBRTC_H
/* DTLS-SRTP for camflow's WebRTC: OpenSSL 3 and libsrtp2, loaded with
   dlopen on first use. Only opaque types cross this header, so Swift never
   sees OpenSSL's type names next to BoringSSL's (swift-nio-ssl).

   Nothing here calls back into Swift: output datagrams are queued and
   polled. A cf_dtls or cf_srtp is used by one thread at a time (the UDP
   channel's event loop); a cf_dtls_ctx may be shared (OpenSSL's SSL_CTX is
   safe to make connections from on any thread). */
#include <stddef.h>
#include <stdint.h>

/* Which library cf_webrtc_load could not use. */
enum {
    CF_WEBRTC_LOADED = 0,
    CF_WEBRTC_NO_LIBSSL = 1,    /* libssl.so.3 or a function of it */
    CF_WEBRTC_NO_LIBCRYPTO = 2, /* libcrypto.so.3 or a function of it */
    CF_WEBRTC_NO_LIBSRTP = 3,   /* libsrtp2.so.1 or a function of it */
    CF_WEBRTC_INIT_FAILED = 4   /* srtp_init or the datagram BIO failed */
};

/* Loads both libraries and resolves every function, once per process
   (later calls return the first result). 0 = ready, else one of the codes
   above with a reason in err (NUL-terminated, truncated to cap). */
int cf_webrtc_load(char *err, size_t cap);

/* Opens the named libraries and resolves the same functions without
   keeping them (for a diagnostic or a test of the failure path): 0 or a
   code above, reason in err. */
int cf_webrtc_probe(const char *libssl, const char *libcrypto, const char *libsrtp, char *err, size_t cap);

typedef struct cf_dtls_ctx cf_dtls_ctx;
typedef struct cf_dtls cf_dtls;
typedef struct cf_srtp cf_srtp;

/* A DTLS 1.2 context with this certificate and private key (DER; the key
   PKCS#8 or SEC1), use_srtp SRTP_AES128_CM_SHA1_80, a peer certificate
   required but any accepted (the caller compares its fingerprint with the
   SDP's), no session cache, no tickets. NULL with a reason in err. */
cf_dtls_ctx *cf_dtls_ctx_new(const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der, size_t key_len,
                             char *err, size_t cap);
void cf_dtls_ctx_free(cf_dtls_ctx *ctx);

/* A DTLS server connection (accept state) sending datagrams of at most mtu
   bytes. initial_timeout_us: first retransmission timeout (doubling up to
   60 s); 0 = OpenSSL's 1 s. OpenSSL counts a timer with under 15 ms left
   as expired, so shorter ones fire at once. NULL when out of memory or mtu
   is too small. */
cf_dtls *cf_dtls_new(cf_dtls_ctx *ctx, uint16_t mtu, uint32_t initial_timeout_us);

/* For tests: a DTLS client connection; its ClientHello is queued at once. */
cf_dtls *cf_dtls_client_new(cf_dtls_ctx *ctx, uint16_t mtu, uint32_t initial_timeout_us);

/* For tests: starts a renegotiation from an established client (servers
   made by cf_dtls_new refuse it). 0 = a new ClientHello is queued. */
int cf_dtls_renegotiate(cf_dtls *dtls);

/* Ends an established connection: a close_notify alert is queued (send
   the output datagrams) and the connection is CF_DTLS_CLOSED. 0 when one
   was queued, -1 when the connection was not established. */
int cf_dtls_close(cf_dtls *dtls);

/* Results of cf_dtls_receive. */
enum {
    CF_DTLS_CLOSED = -2,      /* for good: a close_notify was received or sent */
    CF_DTLS_FAILED = -1,      /* for good: cf_dtls_error says why */
    CF_DTLS_HANDSHAKING = 0,
    CF_DTLS_ESTABLISHED = 1,
    CF_DTLS_APPLICATION_DATA = 2 /* established; application data came and was dropped */
};

/* Feeds one received datagram; then pop what is queued for sending (a
   reply, or a retransmission: OpenSSL also resends its last flight from
   here when its timer is due). */
int cf_dtls_receive(cf_dtls *dtls, const uint8_t *datagram, size_t len);

/* The size of the next queued output datagram, 0 = none. */
size_t cf_dtls_output_size(const cf_dtls *dtls);

/* Moves the next queued datagram to buf; returns its size, 0 = none queued
   or cap too small (the datagram stays queued). */
size_t cf_dtls_pop_output(cf_dtls *dtls, uint8_t *buf, size_t cap);

/* Datagrams OpenSSL wrote while the queue was full (dropped: a retransmission
   makes up for them). */
uint64_t cf_dtls_dropped_output(const cf_dtls *dtls);

/* Time left until the retransmission timer fires (µs, 0 = due now),
   -1 = no timer armed. */
int64_t cf_dtls_timeout_us(cf_dtls *dtls);

/* Retransmits the last flight if the timer is due: 1 = resent, 0 = not
   due, -1 = too many retransmissions (the connection failed). */
int cf_dtls_handle_timeout(cf_dtls *dtls);

/* The peer's certificate (DER) into der; its length, -1 = none or cap too
   small. */
int cf_dtls_peer_certificate(cf_dtls *dtls, uint8_t *der, size_t cap);

/* The 60 bytes of RFC 5764 §4.2 keying material: client key (16), server
   key (16), client salt (14), server salt (14). 0 = ok, -1 = not
   established or a profile other than SRTP_AES128_CM_SHA1_80. */
int cf_dtls_srtp_material(cf_dtls *dtls, uint8_t out[60]);

/* Why the connection failed ("" while it has not). */
const char *cf_dtls_error(const cf_dtls *dtls);

void cf_dtls_free(cf_dtls *dtls);

/* Room srtp_protect needs after the packet (SRTP_MAX_TRAILER_LEN), and
   srtp_protect_rtcp (+ the SRTCP index word). */
#define CF_SRTP_MAX_TRAILER 144
#define CF_SRTCP_MAX_TRAILER 148

/* An SRTP session with AES_CM_128_HMAC_SHA1_80 for RTP and RTCP for any
   SSRC: outbound (protect) or inbound (unprotect). key_salt = 16-byte key
   then 14-byte salt. window: replay window (64 ..< 32768; 0 = 128). NULL
   with the srtp_err_status_t in *status. */
cf_srtp *cf_srtp_new(const uint8_t key_salt[30], int outbound, unsigned window, int *status);

/* In place; len in/out. Return srtp_err_status_t (0 = ok). The buffer must
   have CF_SRTP_MAX_TRAILER (RTCP: CF_SRTCP_MAX_TRAILER) bytes after len. */
int cf_srtp_protect(cf_srtp *srtp, uint8_t *packet, int *len);
int cf_srtp_protect_rtcp(cf_srtp *srtp, uint8_t *packet, int *len);
int cf_srtp_unprotect(cf_srtp *srtp, uint8_t *packet, int *len);
int cf_srtp_unprotect_rtcp(cf_srtp *srtp, uint8_t *packet, int *len);
void cf_srtp_free(cf_srtp *srtp);

/* Shim objects alive (connections, contexts, SRTP sessions, queued
   datagrams): a test's leak check. */
int64_t cf_webrtc_live_objects(void);

#endif
