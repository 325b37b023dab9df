import CamflowCLI

// The built-in plugins; a custom binary passes BuiltinPlugins.all + [MyPlugin.self].
await CamflowCommand.main(plugins: BuiltinPlugins.all)
