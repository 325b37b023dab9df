// swift-tools-version: 6.1
import PackageDescription

/// Settings every camflow target shares: Swift 6 language mode is the package
/// default; warnings are errors in CI through `make`.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "camflow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "camflow", targets: ["CamflowMain"]),
        .library(name: "Camflow", targets: ["Camflow"]),
        .library(name: "CamflowTesting", targets: ["CamflowTesting"]),
        .library(name: "CamflowCLI", targets: ["CamflowCLI"]),
        .library(name: "FilesPlugin", targets: ["FilesPlugin"]),
        .library(name: "MP4Plugin", targets: ["MP4Plugin"]),
        .library(name: "InstarPlugin", targets: ["InstarPlugin"]),
        .library(name: "ZeroMQPlugin", targets: ["ZeroMQPlugin"]),
        .library(name: "RateLimitPlugin", targets: ["RateLimitPlugin"]),
        .library(name: "ExecPlugin", targets: ["ExecPlugin"]),
        .library(name: "WebPlugin", targets: ["WebPlugin"]),
        .library(name: "MQTTPlugin", targets: ["MQTTPlugin"]),
        .library(name: "MQTTClient", targets: ["MQTTClient"]),
        .library(name: "ISOBMFF", targets: ["ISOBMFF"]),
        .library(name: "RTP", targets: ["RTP"]),
        .library(name: "MediaCache", targets: ["MediaCache"]),
        .library(name: "RTSPServer", targets: ["RTSPServer"]),
        .library(name: "RTSPPlugin", targets: ["RTSPPlugin"]),
        .library(name: "InstarProtocol", targets: ["InstarProtocol"]),
        .library(name: "InstarSimulator", targets: ["InstarSimulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
    ],
    targets: [
        // Files below a root opened without following links: the recorders'
        // directories and the web sink's reads of what an index names.
        .target(
            name: "SafeFiles",
            swiftSettings: swiftSettings
        ),
        // The engine: packets, nodes, edges, scheduler, registry, YAML config.
        .target(
            name: "Camflow",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // libzmq's header from Debian's libzmq3-dev: types and constants. It
        // links nothing; the ZeroMQ plugin loads libzmq on first use (dlopen),
        // so a command that runs no ZeroMQ node neither maps libzmq's ~40
        // libraries nor needs them installed. Its pkg-config flags (-isystem
        // for Kerberos) are ones SwiftPM refuses with a warning: not read.
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // libmosquitto's header from Debian's libmosquitto-dev; links nothing
        // either: MQTTClient loads the library on first use.
        .systemLibrary(
            name: "CMosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // A thin client over libmosquitto (its network thread connects,
        // keeps alive, reconnects), shared by the MQTT nodes, the camera's
        // alarm source and the simulator.
        .target(
            name: "MQTTClient",
            dependencies: [
                "Camflow",
                "CMosquitto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Pure streaming MP4 parser: no engine, no I/O.
        .target(
            name: "ISOBMFF",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Pure RTP payload layer (RFC 3550 header, RFC 6184 / 7798 / 3640
        // payloads, sequence and timestamp tracking): no engine, no I/O.
        .target(
            name: "RTP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Helpers for tests of the engine and of plugins: an in-process
        // harness, a gate, bounded waits. Never linked into a binary.
        .target(
            name: "CamflowTesting",
            dependencies: ["Camflow"],
            swiftSettings: swiftSettings
        ),
        // The INSTAR camera's protocol, shared by the camera node, the
        // simulator and the web sink's restream: commands, the endpoint path,
        // Basic and query credentials, the refusal of an upgrade.
        .target(
            name: "InstarProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // RTSP/1.0 as values, no I/O: the message parser and writer, the
        // Transport header, SDP, Basic and Digest authentication, and the
        // server's and the client's state machines (`rtsp`, `rtsp-camera`).
        .target(
            name: "RTSPProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // What a restreamer keeps of each stream so that a client can join
        // at any moment (the latest init segment and GOP): the web sink's
        // viewers and the RTSP server's clients share it.
        .target(
            name: "MediaCache",
            dependencies: [
                "Camflow",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The RTSP server over SwiftNIO: sessions, TCP-interleaved and UDP
        // transports, packetization of init segments and fragments, RTCP
        // sender reports. The `rtsp` node and `camflow sim --rtsp-port` run it.
        .target(
            name: "RTSPServer",
            dependencies: [
                "Camflow",
                "ISOBMFF",
                "MediaCache",
                "RTP",
                "RTSPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // WebRTC's wire formats as values, no I/O: STUN for ICE-lite, the
        // WHEP offer and answer, RTCP feedback (NACK, PLI, FIR).
        .target(
            name: "WebRTCProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // DTLS-SRTP in C over OpenSSL 3 and libsrtp2 (Debian's libssl-dev and
        // libsrtp2-dev for the headers), both loaded with dlopen on first use
        // so that no other command needs them. Its header shows opaque types only.
        .target(
            name: "CWebRTC",
            path: "Sources/CWebRTC"
        ),
        // The WebRTC endpoint: one UDP port for every peer, ICE-lite, DTLS and
        // SRTP through CWebRTC, RTP out with RTCP in; the web sink's WHEP uses it.
        .target(
            name: "WebRTC",
            dependencies: [
                "Camflow",
                "CWebRTC",
                "RTP",
                "WebRTCProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // A simulated INSTAR camera (`camflow sim`, tests, benchmarks), with
        // its self-signed certificate and the built-in clip.
        .target(
            name: "InstarSimulator",
            dependencies: [
                "Camflow",
                "ISOBMFF",
                "InstarProtocol",
                "MQTTClient",
                "RTSPServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources/camera.mp4")],
            swiftSettings: swiftSettings
        ),
        // libFuzzer targets over the MP4 parser, the ZeroMQ header, the clip
        // cutter and the recordings index (`make fuzz`); without -D FUZZING
        // it replays a corpus, so the normal build keeps it compiling and the
        // tests replay the checked-in corpus.
        .executableTarget(
            name: "CamflowFuzz",
            dependencies: ["ISOBMFF", "Camflow", "RTP", "RTSPProtocol", "WebRTCProtocol", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz",
            exclude: ["mp4.dict", "header.dict", "index.dict", "rtp.dict", "rtsp.dict", "stun.dict", "rtcp.dict", "whep.dict", "corpus", "regressions"],
            swiftSettings: swiftSettings
        ),
        // A child process's standard streams as NIO pipe channels: exec's
        // children and the snapshot service's decoder.
        .target(
            name: "ChildIO",
            dependencies: [
                "Camflow",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Plugin families: one module each, written against the public Camflow API.
        .target(
            name: "FilesPlugin",
            dependencies: [
                "Camflow",
                "ISOBMFF",
                "SafeFiles",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Plugins/Files",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MP4Plugin",
            dependencies: [
                "Camflow",
                "ISOBMFF",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Plugins/MP4",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InstarPlugin",
            dependencies: [
                "Camflow",
                "InstarProtocol",
                "MQTTClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Plugins/Instar",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ZeroMQPlugin",
            dependencies: [
                "Camflow",
                "CZeroMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Plugins/ZeroMQ",
            swiftSettings: swiftSettings
        ),
        // mqtt-subscribe and mqtt-publish (with Home Assistant discovery).
        .target(
            name: "MQTTPlugin",
            dependencies: [
                "Camflow",
                "MQTTClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Plugins/MQTT",
            swiftSettings: swiftSettings
        ),
        // Written against the public Camflow API only: the custom-node tutorial's example.
        .target(
            name: "RateLimitPlugin",
            dependencies: ["Camflow"],
            path: "Plugins/RateLimit",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ExecPlugin",
            dependencies: [
                "Camflow",
                "ChildIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Plugins/Exec",
            swiftSettings: swiftSettings
        ),
        // RTSP in and out: the `rtsp` server node and the `rtsp-camera` source.
        .target(
            name: "RTSPPlugin",
            dependencies: [
                "Camflow",
                "ISOBMFF",
                "MediaCache",
                "RTP",
                "RTSPProtocol",
                "RTSPServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Plugins/RTSP",
            swiftSettings: swiftSettings
        ),
        // The web sink: restream over the camera's protocol, viewer page,
        // dashboard, Prometheus metrics, health.
        .target(
            name: "WebPlugin",
            dependencies: [
                "ChildIO",
                "WebRTC",
                "MediaCache",
                "Camflow",
                "InstarProtocol",
                "ISOBMFF",
                "SafeFiles",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Plugins/Web",
            resources: [
                .embedInCode("Assets/viewer.html"),
                .embedInCode("Assets/dashboard.html"),
                .embedInCode("Assets/camflow-player.js"),
                .embedInCode("Assets/viewer.js"),
                .embedInCode("Assets/dashboard.js"),
                .embedInCode("Assets/recordings.html"),
                .embedInCode("Assets/recordings.js"),
                .embedInCode("Assets/camflow.css"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command line as a library: the root command and the commands
        // that need only the engine (run, validate, graph, nodes). It links
        // no plugin: the executable that calls it names those.
        .target(
            name: "CamflowCLI",
            dependencies: [
                "Camflow",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // `camflow bench`: one file per benchmark, each with its command.
        .target(
            name: "CamflowBench",
            dependencies: [
                "Camflow",
                "CamflowCLI",
                "CZeroMQ",
                "ISOBMFF",
                "InstarSimulator",
                "FilesPlugin",
                "MP4Plugin",
                "InstarPlugin",
                "ZeroMQPlugin",
                "WebPlugin",
                "RTSPProtocol",
                "WebRTCProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `camflow` executable, the composition root: the plugins and
        // commands it ships (main.swift), and the commands that need a
        // particular plugin (sim, broker, keygen, recordings).
        .executableTarget(
            name: "CamflowMain",
            dependencies: [
                "Camflow",
                "CamflowCLI",
                "CamflowBench",
                "InstarSimulator",
                "FilesPlugin",
                "MP4Plugin",
                "InstarPlugin",
                "ZeroMQPlugin",
                "RateLimitPlugin",
                "ExecPlugin",
                "WebPlugin",
                "MQTTPlugin",
                "MQTTClient",
                "RTSPPlugin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/camflow",
            swiftSettings: swiftSettings
        ),
        // The custom binary docs/custom-nodes.md builds: three plugins only.
        .executableTarget(
            name: "camflow-tutorial",
            dependencies: ["CamflowCLI", "FilesPlugin", "MP4Plugin", "RateLimitPlugin"],
            path: "Sources/camflow-tutorial",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CamflowTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The benchmarks' pure parts (no benchmark is run by a test).
        .testTarget(
            name: "CamflowBenchTests",
            dependencies: ["CamflowBench", "WebRTCProtocol"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebRTCProtocolTests",
            dependencies: [
                "WebRTCProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebRTCTests",
            dependencies: [
                "WebRTC",
                "WebRTCProtocol",
                "CamflowTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RTSPProtocolTests",
            dependencies: [
                "RTSPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ISOBMFFTests",
            dependencies: [
                "CamflowTesting",
                "ISOBMFF",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RTPTests",
            dependencies: [
                "ISOBMFF",
                "RTP",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FilesPluginTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "FilesPlugin",
                "ISOBMFF",
                "InstarPlugin",
                "InstarSimulator",
                "MP4Plugin",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MP4PluginTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "FilesPlugin",
                "ISOBMFF",
                "MP4Plugin",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InstarPluginTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "InstarPlugin",
                "InstarProtocol",
                "InstarSimulator",
                .product(name: "Logging", package: "swift-log"),
                "MP4Plugin",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ZeroMQPluginTests",
            dependencies: [
                "CZeroMQ",
                "Camflow",
                "CamflowTesting",
                "FilesPlugin",
                "MP4Plugin",
                .product(name: "NIOCore", package: "swift-nio"),
                "ZeroMQPlugin",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RateLimitPluginTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "FilesPlugin",
                "MP4Plugin",
                "RateLimitPlugin",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExecPluginTests",
            dependencies: [
                "Camflow",
                "ChildIO",
                "CamflowTesting",
                "ExecPlugin",
                "FilesPlugin",
                "MP4Plugin",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MQTTPluginTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "MQTTClient",
                "MQTTPlugin",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RTSPPluginTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "ISOBMFF",
                "MediaCache",
                "RTP",
                "RTSPProtocol",
                "RTSPServer",
                "RTSPPlugin",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebPluginTests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "ISOBMFF",
                "MediaCache",
                .product(name: "NIOCore", package: "swift-nio"),
                "WebPlugin",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CamflowCLITests",
            dependencies: [
                "Camflow",
                "CamflowTesting",
                "ISOBMFF",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
