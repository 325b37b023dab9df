import CamflowBench
import CamflowCLI
import ExecPlugin
import FilesPlugin
import InstarPlugin
import MP4Plugin
import RateLimitPlugin
import WebPlugin
import MQTTPlugin
import ZeroMQPlugin

// The composition root: the plugins whose node types `camflow` pipelines may
// use, and the commands beyond run, validate, graph and nodes. A custom binary
// writes its own list (docs/custom-nodes.md) and links only what it names.
await CamflowCommand.main(
    plugins: [FilesPlugin.self, MP4Plugin.self, InstarPlugin.self, ZeroMQPlugin.self,
              RateLimitPlugin.self, ExecPlugin.self, WebPlugin.self, MQTTPlugin.self],
    commands: [SimCommand.self, BrokerCommand.self, KeygenCommand.self, RecordingsCommand.self, BenchCommand.self])
