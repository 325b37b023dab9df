#ifndef CWEBRTC_INTERNAL_H
#define CWEBRTC_INTERNAL_H
/* The shim's view of OpenSSL and libsrtp2: their headers for types and
   constants, their functions through pointers resolved by cf_webrtc_load
   (never linked, so a host without the libraries runs every other command). */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>
#include <stdatomic.h>

#define CF_LIBSSL_FUNCTIONS(X) \
    X(SSL_CTX_new) X(DTLS_method) X(SSL_CTX_free) X(SSL_CTX_use_certificate) X(SSL_CTX_use_PrivateKey) \
    X(SSL_CTX_check_private_key) X(SSL_CTX_set_verify) X(SSL_CTX_set_tlsext_use_srtp) X(SSL_CTX_ctrl) \
    X(SSL_CTX_set_options) X(SSL_new) X(SSL_free) X(SSL_set_bio) X(SSL_ctrl) X(SSL_set_accept_state) \
    X(SSL_set_connect_state) X(SSL_do_handshake) X(SSL_read) X(SSL_get_error) X(SSL_is_init_finished) \
    X(SSL_get_selected_srtp_profile) X(SSL_get1_peer_certificate) X(SSL_export_keying_material) \
    X(SSL_set_ex_data) X(SSL_get_ex_data) X(DTLS_set_timer_cb) X(SSL_renegotiate) \
    X(SSL_clear_options) X(SSL_shutdown)

#define CF_LIBCRYPTO_FUNCTIONS(X) \
    X(BIO_new) X(BIO_s_mem) X(BIO_write) X(BIO_ctrl) X(BIO_free) X(BIO_meth_new) X(BIO_meth_set_write) \
    X(BIO_meth_set_ctrl) X(BIO_meth_set_create) X(BIO_get_new_index) X(BIO_set_init) X(BIO_set_data) \
    X(BIO_get_data) X(d2i_X509) X(i2d_X509) X(X509_free) X(d2i_AutoPrivateKey) X(EVP_PKEY_free) \
    X(ERR_get_error) X(ERR_error_string_n) X(ERR_clear_error)

#define CF_LIBSRTP_FUNCTIONS(X) \
    X(srtp_init) X(srtp_create) X(srtp_dealloc) X(srtp_protect) X(srtp_unprotect) X(srtp_protect_rtcp) \
    X(srtp_unprotect_rtcp) X(srtp_crypto_policy_set_rtp_default) X(srtp_crypto_policy_set_rtcp_default)

/* One pointer per function, typed from its declaration in the headers, so
   a call through it is checked like a direct call. */
struct cf_functions {
#define CF_FIELD(name) __typeof__(name) *name;
    CF_LIBSSL_FUNCTIONS(CF_FIELD)
    CF_LIBCRYPTO_FUNCTIONS(CF_FIELD)
    CF_LIBSRTP_FUNCTIONS(CF_FIELD)
#undef CF_FIELD
};

/* Set once by cf_webrtc_load before it returns 0; read-only after. */
extern struct cf_functions cf_fn;

/* The write side of every DTLS connection: one BIO_write = one datagram. */
extern BIO_METHOD *cf_datagram_method;

/* Made by load.c after the functions are resolved. */
BIO_METHOD *cf_dtls_make_datagram_method(void);

extern atomic_llong cf_live_objects;

#endif
