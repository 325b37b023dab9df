#ifndef CAMFLOW_CZEROMQ_SHIM_H
#define CAMFLOW_CZEROMQ_SHIM_H
#include <zmq.h>
/* A draft option in libzmq 4.3 that Debian's build accepts: with a ZAP
   domain set, refuse CURVE clients when no ZAP handler answers, instead of
   letting everyone in. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif
#endif
