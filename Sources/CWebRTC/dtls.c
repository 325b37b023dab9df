#include "cwebrtc.h"
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output datagrams waiting to be sent: a flight is a handful; a bound so a
   peer that never reads cannot grow it. */
#define CF_DTLS_QUEUE 64
/* The largest datagram OpenSSL may write (a record of 2^14 bytes plus its
   expansion); handshake datagrams stay under the MTU. */
#define CF_DTLS_MAX_DATAGRAM 18432
#define CF_DTLS_MAX_TIMEOUT_US 60000000u

struct cf_dtls_ctx {
    SSL_CTX *ctx;
};

struct cf_dtls {
    SSL *ssl;
    BIO *input;
    uint8_t *queue[CF_DTLS_QUEUE];
    size_t queue_len[CF_DTLS_QUEUE];
    unsigned head, count;
    uint64_t dropped;
    int state;
    uint32_t initial_timeout_us;
    char error[256];
};

static void live(int delta) { atomic_fetch_add(&cf_live_objects, delta); }

/* ---- the write side: each BIO_write is one datagram ---- */

static int datagram_write(BIO *bio, const char *data, int len) {
    cf_dtls *dtls = cf_fn.BIO_get_data(bio);
    if (dtls == NULL || len <= 0) return len;
    /* A full queue or an oversized datagram is dropped as the network
       would; the retransmission timer resends the flight. */
    if (dtls->count == CF_DTLS_QUEUE || len > CF_DTLS_MAX_DATAGRAM) {
        dtls->dropped++;
        return len;
    }
    uint8_t *copy = malloc((size_t)len);
    if (copy == NULL) {
        dtls->dropped++;
        return len;
    }
    memcpy(copy, data, (size_t)len);
    unsigned tail = (dtls->head + dtls->count) % CF_DTLS_QUEUE;
    dtls->queue[tail] = copy;
    dtls->queue_len[tail] = (size_t)len;
    dtls->count++;
    live(1);
    return len;
}

static long datagram_ctrl(BIO *bio, int cmd, long num, void *ptr) {
    (void)bio;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU: return 1200; /* unused: SSL_OP_NO_QUERY_MTU + SSL_set_mtu */
    default: return 0;
    }
}

static int datagram_create(BIO *bio) {
    cf_fn.BIO_set_init(bio, 1);
    return 1;
}

BIO_METHOD *cf_dtls_make_datagram_method(void) {
    BIO_METHOD *method = cf_fn.BIO_meth_new(cf_fn.BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "camflow-datagram");
    if (method == NULL) return NULL;
    cf_fn.BIO_meth_set_write(method, datagram_write);
    cf_fn.BIO_meth_set_ctrl(method, datagram_ctrl);
    cf_fn.BIO_meth_set_create(method, datagram_create);
    return method;
}

/* ---- errors ---- */

/* OpenSSL's error queue is per thread: empty it so one connection's failure
   is never reported by the next one on the same event loop. */
static void take_openssl_error(char *out, size_t cap, const char *what) {
    unsigned long code = cf_fn.ERR_get_error();
    char reason[200] = "";
    if (code != 0) cf_fn.ERR_error_string_n(code, reason, sizeof reason);
    if (out != NULL && cap > 0) snprintf(out, cap, "%s%s%s", what, code != 0 ? ": " : "", reason);
    cf_fn.ERR_clear_error();
}

/* ---- context ---- */

static int accept_any_certificate(int preverify, X509_STORE_CTX *store) {
    (void)preverify;
    (void)store;
    return 1; /* self-signed by design: the SDP fingerprint authenticates it */
}

cf_dtls_ctx *cf_dtls_ctx_new(const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der, size_t key_len,
                             char *err, size_t cap) {
    if (cert_der == NULL || key_der == NULL || cert_len == 0 || key_len == 0 || cert_len > LONG_MAX ||
        key_len > LONG_MAX) {
        if (err != NULL && cap > 0) snprintf(err, cap, "empty or oversized certificate or key");
        return NULL;
    }
    cf_fn.ERR_clear_error();
    const unsigned char *cursor = cert_der;
    X509 *certificate = cf_fn.d2i_X509(NULL, &cursor, (long)cert_len);
    if (certificate == NULL) {
        take_openssl_error(err, cap, "the certificate is not DER X.509");
        return NULL;
    }
    cursor = key_der;
    EVP_PKEY *key = cf_fn.d2i_AutoPrivateKey(NULL, &cursor, (long)key_len);
    if (key == NULL) {
        take_openssl_error(err, cap, "the private key is not DER (PKCS#8 or SEC1)");
        cf_fn.X509_free(certificate);
        return NULL;
    }
    cf_dtls_ctx *result = calloc(1, sizeof *result);
    SSL_CTX *ctx = result != NULL ? cf_fn.SSL_CTX_new(cf_fn.DTLS_method()) : NULL;
    const char *failed = NULL;
    if (ctx == NULL) failed = "out of memory";
    else if (cf_fn.SSL_CTX_use_certificate(ctx, certificate) != 1) failed = "SSL_CTX_use_certificate";
    else if (cf_fn.SSL_CTX_use_PrivateKey(ctx, key) != 1) failed = "SSL_CTX_use_PrivateKey";
    else if (cf_fn.SSL_CTX_check_private_key(ctx) != 1) failed = "the private key does not match the certificate";
    /* Inverted: 0 is success. */
    else if (cf_fn.SSL_CTX_set_tlsext_use_srtp(ctx, "SRTP_AES128_CM_SHA1_80") != 0) failed = "use_srtp";
    else if (cf_fn.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, DTLS1_2_VERSION, NULL) != 1) failed = "DTLS 1.2";
    /* The SSL_CTX holds its own references now. */
    cf_fn.X509_free(certificate);
    cf_fn.EVP_PKEY_free(key);
    if (failed != NULL) {
        take_openssl_error(err, cap, failed);
        if (ctx != NULL) cf_fn.SSL_CTX_free(ctx);
        free(result);
        return NULL;
    }
    cf_fn.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_certificate);
    /* Memory bounds: no session kept after a connection ends. No
       renegotiation (OpenSSL 3 already refuses a client's; this says it
       for good): the keys are exported once and the certificate checked
       once; a new handshake would only cost CPU or swap the certificate. */
    cf_fn.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_SESS_CACHE_MODE, SSL_SESS_CACHE_OFF, NULL);
    cf_fn.SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    result->ctx = ctx;
    live(1);
    return result;
}

void cf_dtls_ctx_free(cf_dtls_ctx *ctx) {
    if (ctx == NULL) return;
    cf_fn.SSL_CTX_free(ctx->ctx); /* connections still alive keep a reference */
    free(ctx);
    live(-1);
}

/* ---- connections ---- */

static unsigned int next_timeout(SSL *ssl, unsigned int previous_us) {
    cf_dtls *dtls = cf_fn.SSL_get_ex_data(ssl, 0);
    if (previous_us == 0) return dtls != NULL ? dtls->initial_timeout_us : 1000000u;
    return previous_us >= CF_DTLS_MAX_TIMEOUT_US / 2 ? CF_DTLS_MAX_TIMEOUT_US : previous_us * 2;
}

static cf_dtls *connection(cf_dtls_ctx *ctx, uint16_t mtu, uint32_t initial_timeout_us, int server) {
    if (ctx == NULL) return NULL;
    cf_dtls *dtls = calloc(1, sizeof *dtls);
    if (dtls == NULL) return NULL;
    dtls->initial_timeout_us = initial_timeout_us;
    dtls->ssl = cf_fn.SSL_new(ctx->ctx);
    BIO *input = dtls->ssl != NULL ? cf_fn.BIO_new(cf_fn.BIO_s_mem()) : NULL;
    BIO *output = input != NULL ? cf_fn.BIO_new(cf_datagram_method) : NULL;
    if (output == NULL) {
        if (input != NULL) cf_fn.BIO_free(input);
        if (dtls->ssl != NULL) cf_fn.SSL_free(dtls->ssl);
        cf_fn.ERR_clear_error();
        free(dtls);
        return NULL;
    }
    /* An empty input is "try again", not end of file. */
    cf_fn.BIO_ctrl(input, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, NULL);
    cf_fn.BIO_set_data(output, dtls);
    cf_fn.SSL_set_bio(dtls->ssl, input, output); /* the SSL owns both now */
    dtls->input = input;
    live(1);
    /* SSL_set_mtu answers the MTU it took, 0 below DTLS's minimum. */
    if (cf_fn.SSL_ctrl(dtls->ssl, SSL_CTRL_SET_MTU, mtu, NULL) != (long)mtu ||
        cf_fn.SSL_set_ex_data(dtls->ssl, 0, dtls) != 1) {
        cf_dtls_free(dtls);
        cf_fn.ERR_clear_error();
        return NULL;
    }
    if (initial_timeout_us != 0) cf_fn.DTLS_set_timer_cb(dtls->ssl, next_timeout);
    if (server) {
        cf_fn.SSL_set_accept_state(dtls->ssl);
    } else {
        cf_fn.SSL_clear_options(dtls->ssl, SSL_OP_NO_RENEGOTIATION); /* so a test can try one */
        cf_fn.SSL_set_connect_state(dtls->ssl);
        cf_fn.SSL_do_handshake(dtls->ssl); /* queues the ClientHello */
        cf_fn.ERR_clear_error();
    }
    return dtls;
}

cf_dtls *cf_dtls_new(cf_dtls_ctx *ctx, uint16_t mtu, uint32_t initial_timeout_us) {
    return connection(ctx, mtu, initial_timeout_us, 1);
}

cf_dtls *cf_dtls_client_new(cf_dtls_ctx *ctx, uint16_t mtu, uint32_t initial_timeout_us) {
    return connection(ctx, mtu, initial_timeout_us, 0);
}

int cf_dtls_renegotiate(cf_dtls *dtls) {
    if (dtls == NULL || dtls->state != CF_DTLS_ESTABLISHED) return -1;
    int ok = cf_fn.SSL_renegotiate(dtls->ssl) == 1 ? 0 : -1;
    if (ok == 0) cf_fn.SSL_do_handshake(dtls->ssl); /* queues the new ClientHello */
    cf_fn.ERR_clear_error();
    return ok;
}

static int fail(cf_dtls *dtls, const char *what) {
    take_openssl_error(dtls->error, sizeof dtls->error, what);
    dtls->state = CF_DTLS_FAILED;
    return CF_DTLS_FAILED;
}

int cf_dtls_close(cf_dtls *dtls) {
    if (dtls == NULL || dtls->state != CF_DTLS_ESTABLISHED) return -1;
    cf_fn.SSL_shutdown(dtls->ssl); /* queues close_notify; the peer's answer is not waited for */
    cf_fn.ERR_clear_error();
    snprintf(dtls->error, sizeof dtls->error, "closed (close_notify sent)");
    dtls->state = CF_DTLS_CLOSED;
    return 0;
}

int cf_dtls_receive(cf_dtls *dtls, const uint8_t *datagram, size_t len) {
    if (dtls == NULL) return CF_DTLS_FAILED;
    if (dtls->state < 0) return dtls->state;
    if (datagram == NULL || len == 0 || len > CF_DTLS_MAX_DATAGRAM) return dtls->state; /* not a record: ignored */
    if (cf_fn.BIO_write(dtls->input, datagram, (int)len) != (int)len) return fail(dtls, "out of memory");
    int application_data = 0;
    unsigned char plain[2048];
    for (;;) {
        int n = cf_fn.SSL_read(dtls->ssl, plain, sizeof plain);
        if (n > 0) {
            application_data = 1; /* nothing is carried over DTLS here (no data channel) */
            continue;
        }
        int reason = cf_fn.SSL_get_error(dtls->ssl, n);
        if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) break;
        if (reason == SSL_ERROR_ZERO_RETURN) {
            cf_fn.ERR_clear_error();
            snprintf(dtls->error, sizeof dtls->error, "the peer closed the connection (close_notify)");
            dtls->state = CF_DTLS_CLOSED;
            break;
        }
        fail(dtls, "DTLS handshake or record failed");
        break;
    }
    /* Whatever OpenSSL left unread belongs to this datagram only: records
       never span datagrams, so it must not prefix the next one. */
    if (cf_fn.BIO_ctrl(dtls->input, BIO_CTRL_PENDING, 0, NULL) > 0) cf_fn.BIO_ctrl(dtls->input, BIO_CTRL_RESET, 0, NULL);
    cf_fn.ERR_clear_error();
    if (dtls->state < 0) return dtls->state;
    if (cf_fn.SSL_is_init_finished(dtls->ssl)) dtls->state = CF_DTLS_ESTABLISHED;
    return dtls->state == CF_DTLS_ESTABLISHED && application_data ? CF_DTLS_APPLICATION_DATA : dtls->state;
}

size_t cf_dtls_output_size(const cf_dtls *dtls) {
    return dtls != NULL && dtls->count > 0 ? dtls->queue_len[dtls->head] : 0;
}

size_t cf_dtls_pop_output(cf_dtls *dtls, uint8_t *buf, size_t cap) {
    size_t len = cf_dtls_output_size(dtls);
    if (len == 0 || len > cap || buf == NULL) return 0;
    memcpy(buf, dtls->queue[dtls->head], len);
    free(dtls->queue[dtls->head]);
    dtls->queue[dtls->head] = NULL;
    dtls->head = (dtls->head + 1) % CF_DTLS_QUEUE;
    dtls->count--;
    live(-1);
    return len;
}

uint64_t cf_dtls_dropped_output(const cf_dtls *dtls) { return dtls != NULL ? dtls->dropped : 0; }

int64_t cf_dtls_timeout_us(cf_dtls *dtls) {
    if (dtls == NULL || dtls->state < 0) return -1;
    struct timeval left = {0, 0};
    if (cf_fn.SSL_ctrl(dtls->ssl, DTLS_CTRL_GET_TIMEOUT, 0, &left) != 1) return -1;
    return (int64_t)left.tv_sec * 1000000 + (int64_t)left.tv_usec;
}

int cf_dtls_handle_timeout(cf_dtls *dtls) {
    if (dtls == NULL || dtls->state < 0) return -1;
    long result = cf_fn.SSL_ctrl(dtls->ssl, DTLS_CTRL_HANDLE_TIMEOUT, 0, NULL);
    if (result < 0) {
        fail(dtls, "the peer stopped answering (too many retransmissions)");
        return -1;
    }
    cf_fn.ERR_clear_error();
    return result > 0 ? 1 : 0;
}

int cf_dtls_peer_certificate(cf_dtls *dtls, uint8_t *der, size_t cap) {
    if (dtls == NULL) return -1;
    X509 *peer = cf_fn.SSL_get1_peer_certificate(dtls->ssl);
    if (peer == NULL) return -1;
    int len = cf_fn.i2d_X509(peer, NULL);
    if (len > 0 && (size_t)len <= cap && der != NULL) {
        unsigned char *cursor = der;
        len = cf_fn.i2d_X509(peer, &cursor);
    } else {
        len = -1;
    }
    cf_fn.X509_free(peer);
    cf_fn.ERR_clear_error();
    return len;
}

int cf_dtls_srtp_material(cf_dtls *dtls, uint8_t out[60]) {
    if (dtls == NULL || dtls->state != CF_DTLS_ESTABLISHED) return -1;
    const SRTP_PROTECTION_PROFILE *profile = cf_fn.SSL_get_selected_srtp_profile(dtls->ssl);
    if (profile == NULL || profile->id != SRTP_AES128_CM_SHA1_80) return -1;
    int ok = cf_fn.SSL_export_keying_material(dtls->ssl, out, 60, "EXTRACTOR-dtls_srtp", 19, NULL, 0, 0);
    cf_fn.ERR_clear_error();
    return ok == 1 ? 0 : -1;
}

const char *cf_dtls_error(const cf_dtls *dtls) { return dtls != NULL ? dtls->error : "no connection"; }

void cf_dtls_free(cf_dtls *dtls) {
    if (dtls == NULL) return;
    cf_fn.SSL_free(dtls->ssl); /* and both BIOs */
    while (dtls->count > 0) {
        free(dtls->queue[dtls->head]);
        dtls->head = (dtls->head + 1) % CF_DTLS_QUEUE;
        dtls->count--;
        live(-1);
    }
    free(dtls);
    live(-1);
}
