#ifndef CAMFLOW_CMOSQUITTO_SHIM_H
#define CAMFLOW_CMOSQUITTO_SHIM_H
/* libmosquitto's types and constants, from Debian's libmosquitto-dev. The
   module links nothing: MQTTClient loads libmosquitto when a client is first
   made (Sources/MQTTClient/LibMosquitto.swift), as the ZeroMQ plugin does
   libzmq, so commands without MQTT neither map it nor need it installed.
   mqtt_protocol.h names MQTT 5's properties and reason codes. */
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
