#include "cwebrtc.h"
#include "internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct cf_srtp {
    srtp_t session;
};

cf_srtp *cf_srtp_new(const uint8_t key_salt[30], int outbound, unsigned window, int *status) {
    int ignored;
    if (status == NULL) status = &ignored;
    if (key_salt == NULL || (window != 0 && (window < 64 || window >= 0x8000))) {
        *status = srtp_err_status_bad_param;
        return NULL;
    }
    cf_srtp *srtp = calloc(1, sizeof *srtp);
    if (srtp == NULL) {
        *status = srtp_err_status_alloc_fail;
        return NULL;
    }
    /* libsrtp derives its session keys from this copy in srtp_create and
       keeps no pointer to it. */
    unsigned char key[30];
    memcpy(key, key_salt, sizeof key);
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    cf_fn.srtp_crypto_policy_set_rtp_default(&policy.rtp);   /* AES_CM_128_HMAC_SHA1_80 */
    cf_fn.srtp_crypto_policy_set_rtcp_default(&policy.rtcp); /* the same for SRTCP */
    /* One wildcard policy per direction: libsrtp refuses one for both. */
    policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    policy.key = key;
    policy.window_size = window;
    /* Retransmissions resend the stored protected bytes, never re-protect. */
    policy.allow_repeat_tx = 0;
    policy.next = NULL;
    srtp_err_status_t result = cf_fn.srtp_create(&srtp->session, &policy);
    memset(key, 0, sizeof key);
    if (result != srtp_err_status_ok) {
        *status = (int)result;
        free(srtp);
        return NULL;
    }
    *status = srtp_err_status_ok;
    atomic_fetch_add(&cf_live_objects, 1);
    return srtp;
}

int cf_srtp_protect(cf_srtp *srtp, uint8_t *packet, int *len) {
    if (srtp == NULL || packet == NULL || len == NULL || *len <= 0) return srtp_err_status_bad_param;
    return (int)cf_fn.srtp_protect(srtp->session, packet, len);
}

int cf_srtp_protect_rtcp(cf_srtp *srtp, uint8_t *packet, int *len) {
    if (srtp == NULL || packet == NULL || len == NULL || *len <= 0) return srtp_err_status_bad_param;
    return (int)cf_fn.srtp_protect_rtcp(srtp->session, packet, len);
}

int cf_srtp_unprotect(cf_srtp *srtp, uint8_t *packet, int *len) {
    if (srtp == NULL || packet == NULL || len == NULL || *len <= 0) return srtp_err_status_bad_param;
    return (int)cf_fn.srtp_unprotect(srtp->session, packet, len);
}

int cf_srtp_unprotect_rtcp(cf_srtp *srtp, uint8_t *packet, int *len) {
    if (srtp == NULL || packet == NULL || len == NULL || *len <= 0) return srtp_err_status_bad_param;
    return (int)cf_fn.srtp_unprotect_rtcp(srtp->session, packet, len);
}

void cf_srtp_free(cf_srtp *srtp) {
    if (srtp == NULL) return;
    cf_fn.srtp_dealloc(srtp->session);
    free(srtp);
    atomic_fetch_add(&cf_live_objects, -1);
}
