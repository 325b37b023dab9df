#include "cwebrtc.h"
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The macros of OpenSSL the shim replaces by SSL_ctrl/SSL_CTX_ctrl/BIO_ctrl
   with these constants (the values the design was measured with; a header
   that disagrees stops the build). */
_Static_assert(DTLS_CTRL_GET_TIMEOUT == 73, "DTLSv1_get_timeout");
_Static_assert(DTLS_CTRL_HANDLE_TIMEOUT == 74, "DTLSv1_handle_timeout");
_Static_assert(SSL_CTRL_SET_MTU == 17, "SSL_set_mtu");
_Static_assert(SSL_CTRL_SET_MIN_PROTO_VERSION == 123, "SSL_CTX_set_min_proto_version");
_Static_assert(SSL_CTRL_SET_SESS_CACHE_MODE == 44, "SSL_CTX_set_session_cache_mode");
_Static_assert(BIO_C_SET_BUF_MEM_EOF_RETURN == 130, "BIO_set_mem_eof_return");
_Static_assert(BIO_CTRL_FLUSH == 11 && BIO_CTRL_DGRAM_QUERY_MTU == 40 && BIO_CTRL_RESET == 1 && BIO_CTRL_PENDING == 10,
               "BIO controls");
_Static_assert(DTLS1_2_VERSION == 0xFEFD, "DTLS 1.2");
_Static_assert(SRTP_AES128_CM_SHA1_80 == 1, "use_srtp profile");
_Static_assert(SRTP_MAX_TRAILER_LEN == CF_SRTP_MAX_TRAILER && CF_SRTCP_MAX_TRAILER == SRTP_MAX_TRAILER_LEN + 4,
               "SRTP trailer room");
_Static_assert(CF_DTLS_FAILED == -1 && CF_DTLS_ESTABLISHED == 1, "results");

struct cf_functions cf_fn;
BIO_METHOD *cf_datagram_method;
atomic_llong cf_live_objects;

static void say(char *err, size_t cap, const char *format, const char *a, const char *b) {
    if (err != NULL && cap > 0) snprintf(err, cap, format, a, b);
}

static void *open_library(const char *path, char *err, size_t cap) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        say(err, cap, "cannot load %s: %s", path, why != NULL ? why : "unknown error");
    }
    return handle;
}

/* Resolves every function of one library into table; the first missing
   name goes to err. */
#define CF_RESOLVE(name)                                                            \
    if (ok) {                                                                         \
        void *address = dlsym(handle, #name);                                         \
        if (address == NULL) {                                                        \
            say(err, cap, "%s lacks %s (camflow needs OpenSSL 3 and libsrtp2 2.x)", path, #name); \
            ok = 0;                                                                   \
        } else {                                                                      \
            memcpy(&table->name, &address, sizeof address);                         \
        }                                                                             \
    }

static int resolve_ssl(void *handle, const char *path, struct cf_functions *table, char *err, size_t cap) {
    int ok = 1;
    CF_LIBSSL_FUNCTIONS(CF_RESOLVE)
    return ok;
}

static int resolve_crypto(void *handle, const char *path, struct cf_functions *table, char *err, size_t cap) {
    int ok = 1;
    CF_LIBCRYPTO_FUNCTIONS(CF_RESOLVE)
    return ok;
}

static int resolve_srtp(void *handle, const char *path, struct cf_functions *table, char *err, size_t cap) {
    int ok = 1;
    CF_LIBSRTP_FUNCTIONS(CF_RESOLVE)
    return ok;
}

/* Opens and resolves all three; on failure closes what it opened (a library
   already loaded by the process only loses a reference). */
static int open_all(const char *ssl_path, const char *crypto_path, const char *srtp_path, struct cf_functions *table,
                    char *err, size_t cap) {
    void *crypto = open_library(crypto_path, err, cap);
    if (crypto == NULL) return CF_WEBRTC_NO_LIBCRYPTO;
    if (!resolve_crypto(crypto, crypto_path, table, err, cap)) {
        dlclose(crypto);
        return CF_WEBRTC_NO_LIBCRYPTO;
    }
    void *ssl = open_library(ssl_path, err, cap);
    if (ssl == NULL || !resolve_ssl(ssl, ssl_path, table, err, cap)) {
        if (ssl != NULL) dlclose(ssl);
        dlclose(crypto);
        return CF_WEBRTC_NO_LIBSSL;
    }
    void *srtp = open_library(srtp_path, err, cap);
    if (srtp == NULL || !resolve_srtp(srtp, srtp_path, table, err, cap)) {
        if (srtp != NULL) dlclose(srtp);
        dlclose(ssl);
        dlclose(crypto);
        return CF_WEBRTC_NO_LIBSRTP;
    }
    return CF_WEBRTC_LOADED;
}

/* On success the handles stay open: unloading OpenSSL once it may have
   initialised is not safe, and a process that probes loads it anyway. */
int cf_webrtc_probe(const char *libssl, const char *libcrypto, const char *libsrtp, char *err, size_t cap) {
    struct cf_functions scratch;
    if (err != NULL && cap > 0) err[0] = 0;
    return open_all(libssl, libcrypto, libsrtp, &scratch, err, cap);
}

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_result;
static char load_error[512];

static void load(void) {
    load_result = open_all("libssl.so.3", "libcrypto.so.3", "libsrtp2.so.1", &cf_fn, load_error, sizeof load_error);
    if (load_result != CF_WEBRTC_LOADED) return;
    srtp_err_status_t status = cf_fn.srtp_init();
    if (status != srtp_err_status_ok) {
        snprintf(load_error, sizeof load_error, "srtp_init failed (srtp_err_status_t %d)", (int)status);
        load_result = CF_WEBRTC_INIT_FAILED;
        return;
    }
    cf_datagram_method = cf_dtls_make_datagram_method();
    if (cf_datagram_method == NULL) {
        snprintf(load_error, sizeof load_error, "cannot make the DTLS datagram BIO (out of memory)");
        load_result = CF_WEBRTC_INIT_FAILED;
    }
}

int cf_webrtc_load(char *err, size_t cap) {
    pthread_once(&load_once, load);
    if (err != NULL && cap > 0) snprintf(err, cap, "%s", load_result == CF_WEBRTC_LOADED ? "" : load_error);
    return load_result;
}

int64_t cf_webrtc_live_objects(void) { return (int64_t)atomic_load(&cf_live_objects); }
