#ifndef CAMFLOW_CZEROMQ_SHIM_H
#define CAMFLOW_CZEROMQ_SHIM_H
/* libzmq's types and constants, from Debian's libzmq3-dev. The module links
   nothing: the ZeroMQ plugin loads libzmq when a socket is first needed
   (Plugins/ZeroMQ/LibZMQ.swift), so a camflow command that runs no ZeroMQ
   node neither maps libzmq and the ~40 libraries it pulls in nor needs
   them installed. */
#include <zmq.h>
/* A draft option in libzmq 4.3 that Debian's build accepts: with a ZAP
   domain set, refuse CURVE clients when no ZAP handler answers, instead of
   letting everyone in. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif
#endif
