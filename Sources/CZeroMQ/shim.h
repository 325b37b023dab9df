#ifndef CAMFLOW_CZEROMQ_SHIM_H
#define CAMFLOW_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
