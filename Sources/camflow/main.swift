import CamflowBench
import CamflowCLI
import ExecPlugin
import FilesPlugin
#if canImport(Glibc)
import Glibc
#endif
import InstarPlugin
import MP4Plugin
import RateLimitPlugin
import RTSPPlugin
import WebPlugin
import MQTTPlugin
import ZeroMQPlugin

// Once, for the whole process, before anything runs: a peer that goes away
// (an exec node's child or the snapshot decoder that exits, a viewer that
// disconnects) leaves a closed pipe or socket, and a write to it must be an
// error its writer handles (EPIPE), not a signal that kills camflow. Nodes do
// not set it themselves: a process-wide setting changed from a node is a race
// with every other thread. Children get the default back (ChildProcess).
signal(SIGPIPE, SIG_IGN)

// The composition root: the plugins whose node types `camflow` pipelines may
// use, and the commands beyond run, validate, graph and nodes. A custom binary
// writes its own list (docs/custom-nodes.md) and links only what it names.
await CamflowCommand.main(
    plugins: [FilesPlugin.self, MP4Plugin.self, InstarPlugin.self, ZeroMQPlugin.self,
              RateLimitPlugin.self, ExecPlugin.self, WebPlugin.self, MQTTPlugin.self, RTSPPlugin.self],
    commands: [SimCommand.self, BrokerCommand.self, KeygenCommand.self, RecordingsCommand.self, BenchCommand.self])
