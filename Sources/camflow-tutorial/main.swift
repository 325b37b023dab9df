import CamflowCLI
import FilesPlugin
import MP4Plugin
import RateLimitPlugin

// The binary docs/custom-nodes.md builds: the standard commands and three
// plugins, one of them the tutorial's own node (`rate-limit`). It links no
// other plugin and no system library they need (libzmq); a test checks it.
await CamflowCommand.main(name: "camflow-tutorial",
                          plugins: [FilesPlugin.self, MP4Plugin.self, RateLimitPlugin.self])
