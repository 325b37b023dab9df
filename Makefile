SHELL := /bin/bash
# camflow: `make demo` runs the main job, `make test` runs the tests.
# Both install missing Debian packages first when run as root.

SWIFT ?= swift
# Debian packages the build and tests need beyond the Swift toolchain:
# ffmpeg (ffprobe is the oracle of the MP4 parser tests, ffmpeg decodes what
# subscribers received), libzmq3-dev and pkg-config (the ZeroMQ plugin),
# python3-zmq (Python with ZeroMQ for the tests' helpers), procps (pgrep in the exec
# tests), util-linux (setpriv for exec children, unshare for the full-disk test),
# gcc and libc6-dev (the fsync shim of the recording tests), time (GNU time: camflow
# bench mp4 measures each process with it), libmosquitto-dev (the MQTT nodes),
# mosquitto and mosquitto-clients (the real broker, mosquitto_pub and
# mosquitto_sub of the MQTT tests and the demo), openssl (the MQTT TLS test's certificates),
# python3-venv (the tests' Python packages from PyPI live in .venv), libssl-dev and
# libsrtp2-dev (the headers of WebRTC's DTLS-SRTP shim; camflow loads libssl3 and
# libsrtp2-1 when WebRTC is first used), GStreamer's RTSP
# server with its bindings (gir1.2-gst-rtsp-server-1.0, gir1.2-gstreamer-1.0, python3-gi),
# plugins (good: qtdemux and the RTP payloaders; bad: h265parse; libav) and tools: the
# independent RTSP server the rtsp-camera tests and the RTSP benchmark record from.
DEBIAN_PACKAGES ?= ffmpeg libzmq3-dev python3-zmq pkg-config chromium python3-prometheus-client procps util-linux gcc libc6-dev time \
	libmosquitto-dev mosquitto mosquitto-clients openssl python3-venv libssl-dev libsrtp2-dev \
	gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-tools \
	python3-gi gir1.2-gstreamer-1.0 gstreamer1.0-nice gir1.2-gst-plugins-bad-1.0
BUILD_LOG := .build/build.log

.PHONY: all build release test demo deps docs bench fixtures fuzz clean venv multihost

all: build

deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages:$$missing"; echo "install them with: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# Builds everything (tests included) and fails on any warning in our own code.
build: deps
	@mkdir -p .build
	@$(SWIFT) build --build-tests 2>&1 | tee $(BUILD_LOG); test $${PIPESTATUS[0]} -eq 0
	@if grep -E "^/.*/(Sources|Plugins|Tests)/.*: warning:" $(BUILD_LOG) | grep -v "/.build/"; then \
	  echo "error: warnings in camflow's own code (see above)"; exit 1; fi

# The binary to deploy and to benchmark: optimised, with the Swift runtime and
# Foundation linked in, so it needs no Swift toolchain where it runs and starts
# in ~6 ms instead of ~9 (no symbol lookups across the runtime's libraries).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

# A virtual environment of the project's own (.venv, not committed) with
# packages from PyPI: the Python client (clients/python, editable, with PyAV,
# numpy and pytest) and m3u8, which parses the LL-HLS playlists in the tests.
PYTHON ?= /usr/bin/python3
VENV := .venv
PYTHON_TEST_PACKAGES := "m3u8>=6,<7"
venv: $(VENV)/.ready
$(VENV)/.ready: Makefile clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e "./clients/python[decode,test]" $(PYTHON_TEST_PACKAGES)
	touch $@

# The Swift tests run in parallel, at most SWIFT_TEST_WIDTH at once: most of
# them wait on a camflow process, a simulator or a socket, so eight at a time
# keep two cores busy without starving the end-to-end tests' time limits.
# (`swift test` has no way to pass the width on, so the test binary it would
# run is run directly.) No test blocks the cooperative pool they share, and
# every one uses ephemeral ports.
SWIFT_TEST_WIDTH ?= 8
test: build venv
	$$($(SWIFT) build --show-bin-path)/camflowPackageTests.xctest --testing-library swift-testing \
	  --experimental-maximum-parallelization-width $(SWIFT_TEST_WIDTH)
	CAMFLOW_BINARY=$$($(SWIFT) build --show-bin-path)/camflow $(VENV)/bin/python -m pytest -q clients/python/tests
	scripts/check-architecture.py
	scripts/check-concurrency.py

# Three hosts in network namespaces (as root): a cut link and a restarted
# broker, measured (docs/DEPLOYMENT.md). The suite runs it too, or says why not.
multihost: build venv
	scripts/multihost.py --camflow $$($(SWIFT) build --show-bin-path)/camflow --python $(VENV)/bin/python

# The main job: a simulated camera and pipelines/demo.yaml, DEMO_SECONDS long.
demo: build venv
	scripts/demo.sh

# Rewrites docs/nodes.md from the node declarations.
docs: build
	$$($(SWIFT) build --show-bin-path)/camflow nodes --markdown > docs/nodes.md

bench: release
	$$($(SWIFT) build -c release --static-swift-stdlib --show-bin-path)/camflow bench engine

fixtures:
	scripts/make-fixtures.sh

clean:
	rm -rf .build

# Fuzzes what camflow reads from the wire with libFuzzer + AddressSanitizer,
# built optimised: FUZZ_TARGET=mp4 (the MP4 parser, the default), header
# (the ZeroMQ packet header), clip (a recording cut into a clip) or index
# (a recordings index.jsonl). Small inputs and a dictionary of box types,
# keys and edge values; what it finds is merged, minimised, into
# Fuzz/corpus/TARGET, which the tests replay with Fuzz/regressions/TARGET
# (inputs that once broke something; a crash found goes there, named).
#   FUZZ_SECONDS=600 make fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?= mp4
# clip reads a recording: the MP4 dictionary.
FUZZ_DICT = $(if $(wildcard Fuzz/$(FUZZ_TARGET).dict),Fuzz/$(FUZZ_TARGET).dict,Fuzz/mp4.dict)
FUZZ_WORK = .build-fuzz/corpus-$(FUZZ_TARGET)
fuzz:
	$(SWIFT) build -c release --scratch-path .build-fuzz --product CamflowFuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc FUZZING -Xswiftc -use-ld=lld
	scripts/make-fuzz-seeds.py
	mkdir -p $(FUZZ_WORK) Fuzz/corpus/$(FUZZ_TARGET) Fuzz/regressions/$(FUZZ_TARGET) .build-fuzz/seeds/$(FUZZ_TARGET)
	CAMFLOW_FUZZ_TARGET=$(FUZZ_TARGET) .build-fuzz/release/CamflowFuzz $(FUZZ_WORK) Fuzz/corpus/$(FUZZ_TARGET) \
	  Fuzz/regressions/$(FUZZ_TARGET) .build-fuzz/seeds/$(FUZZ_TARGET) -dict=$(FUZZ_DICT) -max_len=4096 -max_total_time=$(FUZZ_SECONDS) \
	  -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
	rm -rf .build-fuzz/minimised && mkdir -p .build-fuzz/minimised
	CAMFLOW_FUZZ_TARGET=$(FUZZ_TARGET) .build-fuzz/release/CamflowFuzz -merge=1 .build-fuzz/minimised \
	  Fuzz/corpus/$(FUZZ_TARGET) $(FUZZ_WORK) -max_len=4096
	rm -rf Fuzz/corpus/$(FUZZ_TARGET) && mv .build-fuzz/minimised Fuzz/corpus/$(FUZZ_TARGET)
