#!/usr/bin/env python3
"""Checks the rules of docs/ARCHITECTURE.md ("Targets, and who may import
whom") on the package as SwiftPM reads it (`swift package dump-package`):

- a plugin (a target under Plugins/) depends on no other plugin;
- no library product links benchmark or test code (CamflowTesting, the
  library of test helpers, is the one product that is test code);
- no Swift source file is longer than 400 lines.

Exits 1 and says what broke a rule."""
import json
import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
package = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                    capture_output=True, text=True).stdout)
targets = {t["name"]: t for t in package["targets"]}


def local_dependencies(target):
    names = []
    for dependency in target["dependencies"]:
        for kind in ("byName", "target"):
            if kind in dependency and dependency[kind][0] in targets:
                names.append(dependency[kind][0])
    return names


problems = []
plugins = {name for name, t in targets.items() if (t.get("path") or "").startswith("Plugins/")}
for name in sorted(plugins):
    for dependency in local_dependencies(targets[name]):
        if dependency in plugins:
            problems.append(f"plugin {name} depends on plugin {dependency}")

for product in package["products"]:
    if "library" not in product["type"] or product["name"] == "CamflowTesting":
        continue
    closure, stack = set(), list(product["targets"])
    while stack:
        name = stack.pop()
        if name not in closure:
            closure.add(name)
            stack += local_dependencies(targets[name])
    for name in sorted(closure):
        if name in ("CamflowBench", "CamflowTesting") or targets[name]["type"] == "test":
            problems.append(f"library product {product['name']} links {name}")

for folder in ("Sources", "Plugins", "Tests", "Fuzz"):
    for path in sorted((root / folder).rglob("*.swift")):
        lines = path.read_text().count("\n")
        if lines > 400:
            problems.append(f"{path.relative_to(root)} has {lines} lines (at most 400)")

for problem in problems:
    print(f"architecture: {problem}", file=sys.stderr)
print(f"architecture: {len(plugins)} plugins, {len(package['products'])} products checked, "
      f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
