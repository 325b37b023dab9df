#!/usr/bin/env python3
"""Checks the concurrency rules of docs/ARCHITECTURE.md ("Concurrency") in
the product code (Sources/ and Plugins/; the benchmarks and the test
helpers aside):

- nothing sleeps but the clock: no usleep, nanosleep, sleep, Thread.sleep,
  or Task.sleep outside Sources/Camflow/Time (a wait is on a condition, or
  on the pipeline's clock);
- one way off the cooperative pool: no DispatchQueue, DispatchGroup,
  DispatchSemaphore, NIOThreadPool, Task.detached or Thread of our own
  outside BlockingIOThread;
- SIGPIPE is set once, by the executable;
- no lock is held while resuming a continuation, firing a signal,
  yielding to or finishing a stream, or logging: the body of every
  `withLock { ... }` is searched for those calls.

Exits 1 and says where a rule is broken."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
exempt_folders = ("Sources/CamflowBench/", "Sources/CamflowTesting/")

forbidden = [
    (re.compile(r"\busleep\(|\bnanosleep\(|(?<![\w.])sleep\(|Thread\.sleep|Task\.sleep"), "sleeps",
     ("Sources/Camflow/Time/",)),
    (re.compile(r"\bDispatch(Queue|Group|Semaphore)\b|\bNIOThreadPool\b|Task\.detached|(?<![\w.])Thread(\s*\{|\()"),
     "moves work off the pool other than by BlockingIOThread", ("Sources/Camflow/Concurrency/BlockingIOThread.swift",)),
    (re.compile(r"signal\(SIGPIPE"), "sets SIGPIPE (only the executable does, once)", ("Sources/camflow/main.swift",)),
]

# Inside a lock: what wakes, signals, feeds or writes out must wait until it is released.
# A call on the locked value itself (`$0.fire()`: a state machine's method) only says what to do.
under_lock = re.compile(r"(?<!\$0)(\.resume\(|\.fire\(\)|\.yield\(|\bcontinuation\.finish\(|\blogger\.|\bprint\()")


def code_only(text):
    """The text with comments and string literals blanked (same length), so braces and calls in them do not count."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text.startswith('"""', i):
            end = text.find('"""', i + 3)
            end = n if end < 0 else end + 3
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text[i] == '"':
            j = i + 1
            depth = 0
            while j < n and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "(":
                    depth += 1
                    j += 2
                    continue
                if depth and text[j] == ")":
                    depth -= 1
                elif not depth and text[j] == "\\":
                    j += 2
                    continue
                elif not depth and text[j] == '"':
                    break
                j += 1
            out.append('"' + " " * (j - i - 1) + ('"' if j < n else ""))
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def closure_end(code, start):
    """The offset of the brace that closes the one at `start`."""
    depth, i = 0, start
    while i < len(code):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(code) - 1


def without_tasks(body):
    """A lock's body without the bodies of tasks it creates: they run later, not under the lock."""
    for match in reversed(list(re.finditer(r"\bTask\s*(\[[^\]]*\])?\s*\{|\bTask\s*\{", body))):
        start = body.find("{", match.start())
        end = closure_end(body, start)
        body = body[:start] + re.sub(r"[^\n]", " ", body[start:end + 1]) + body[end + 1:]
    return body


def lock_bodies(code):
    """(start offset, body) of each `withLock` closure."""
    for match in re.finditer(r"\bwithLock\b", code):
        start = code.find("{", match.end())
        if start < 0:
            continue
        # Only a closure that opens right after withLock (its argument list or a trailing closure).
        between = code[match.end():start]
        if not re.fullmatch(r"\s*(\(\s*)?", between) and not re.fullmatch(r"\s*\([^)]*\)\s*", between):
            continue
        yield start, without_tasks(code[start:closure_end(code, start) + 1])


problems = []
checked = 0
for folder in ("Sources", "Plugins"):
    for path in sorted((root / folder).rglob("*.swift")):
        relative = str(path.relative_to(root))
        if relative.startswith(exempt_folders):
            continue
        checked += 1
        code = code_only(path.read_text())
        for pattern, what, allowed in forbidden:
            if relative.startswith(allowed):
                continue
            for match in pattern.finditer(code):
                line = code.count("\n", 0, match.start()) + 1
                problems.append(f"{relative}:{line}: {what}: {match.group(0).strip()}")
        for start, body in lock_bodies(code):
            for match in under_lock.finditer(body):
                line = code.count("\n", 0, start + match.start()) + 1
                problems.append(f"{relative}:{line}: under a lock: {match.group(0)}")

for problem in problems:
    print(f"concurrency: {problem}", file=sys.stderr)
print(f"concurrency: {checked} files checked, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
