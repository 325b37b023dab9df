#include "cwebrtc.h"

int cf_webrtc_placeholder(void) { return 0; }
