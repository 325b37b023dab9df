#!/usr/bin/env python3
"""camflow across three hosts, in network namespaces, with the link cut.

Host A runs `camflow sim` (4 cameras) and a camflow that records them and
publishes them to the broker on host B; host C subscribes through B with
the Python client. Then the A-B link loses every packet for --cut seconds
and comes back, and the broker is killed and started again. What is
measured and checked:

- A's recordings: no gap, and every file decodes (recording never waits on
  the network);
- A's pipeline: no time blocked on the edges into zmq-publish or file-record;
- C: how long after the link returns its messages resume (at most one GOP),
  how many it lost (from sequence numbers), and that its pictures start
  again at a keyframe; the same after the broker restarts;
- A's memory and file descriptors come back to their level.

Needs root and `ip netns` (iproute2, tc with netem). Exits 77 with a reason
where namespaces cannot be made. Prints a report; --json writes it too.

  sudo scripts/multihost.py --camflow .build/debug/camflow --python .venv/bin/python
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOP_SECONDS = 2.0  # the simulator's camera: a keyframe every 2 s
SKIP = 77


def run(*command, check=True):
    return subprocess.run(command, check=check, capture_output=True, text=True)


class Hosts:
    """Three namespaces, A - B - C, on 10.231.0.0/29 (made here, removed at the end)."""

    def __init__(self):
        tag = str(os.getpid() % 100000)
        self.names = {host: f"cf{host}{tag}" for host in "abc"}
        self.ab = (f"cfab{tag}", f"cfba{tag}")  # A's end, B's end
        self.bc = (f"cfbc{tag}", f"cfcb{tag}")
        self.address = {"a": "10.231.0.1", "b-a": "10.231.0.2", "b-c": "10.231.0.5", "c": "10.231.0.6"}

    def ns(self, host, *command):
        return ["ip", "netns", "exec", self.names[host], *command]

    def create(self):
        for name in self.names.values():
            run("ip", "netns", "add", name)
        a, b, c = (self.names[h] for h in "abc")
        run("ip", "link", "add", self.ab[0], "netns", a, "type", "veth", "peer", "name", self.ab[1], "netns", b)
        run("ip", "link", "add", self.bc[0], "netns", b, "type", "veth", "peer", "name", self.bc[1], "netns", c)
        for host, device, address in (("a", self.ab[0], "10.231.0.1/30"), ("b", self.ab[1], "10.231.0.2/30"),
                                      ("b", self.bc[0], "10.231.0.5/30"), ("c", self.bc[1], "10.231.0.6/30")):
            run(*self.ns(host, "ip", "addr", "add", address, "dev", device))
            run(*self.ns(host, "ip", "link", "set", device, "up"))
        for host in "abc":
            run(*self.ns(host, "ip", "link", "set", "lo", "up"))

    def cut(self, lossy, netem):
        """Every packet on the A-B link lost (netem, both directions, where the kernel has it),
        or the link down at both ends; or the link whole again."""
        for host, device in (("a", self.ab[0]), ("b", self.ab[1])):
            if netem:
                verb = "add" if lossy else "del"
                run(*self.ns(host, "tc", "qdisc", verb, "dev", device, "root", *(["netem", "loss", "100%"] if lossy else [])))
            else:
                run(*self.ns(host, "ip", "link", "set", device, "down" if lossy else "up"))

    def remove(self):
        for name in self.names.values():
            run("ip", "netns", "del", name, check=False)


def can_make_namespaces():
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip",):
        if not shutil.which(tool):
            return f"'{tool}' is not installed (apt-get install iproute2)"
    probe = f"cfprobe{os.getpid()}"
    made = run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    run("ip", "netns", "del", probe, check=False)
    return None


def has_netem():
    if not shutil.which("tc"):
        return False
    probe = f"cfnetem{os.getpid()}"
    run("ip", "netns", "add", probe, check=False)
    try:
        return run("ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "1%",
                   check=False).returncode == 0
    finally:
        run("ip", "netns", "del", probe, check=False)


class Process:
    """A child in a namespace, its output collected line by line with arrival times."""

    def __init__(self, command, name, directory):
        self.name = name
        self.lines = []
        # JSON lines parsed once as they arrive (the subscriber's): reading them must not cost the hosts CPU.
        self.events = []
        self.lock = threading.Lock()
        self.log = open(pathlib.Path(directory) / f"{name}.stderr", "wb")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            event = json.loads(line) if line.startswith("{") else None
            with self.lock:
                self.lines.append((time.time(), line))
                if event is not None:
                    self.events.append(event)

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, pattern, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in self.snapshot():
                found = re.search(pattern, line)
                if found:
                    return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not print /{pattern}/ within {timeout}s; see {self.log.name}")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def usage_of(pid):
    """Resident memory (KiB) and open file descriptors of a process."""
    rss = int(re.search(r"VmRSS:\s+(\d+)", pathlib.Path(f"/proc/{pid}/status").read_text()).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def metric(hosts, port, name, label):
    """The sum of a counter's samples with `label` (such as to="publish") on A's /metrics."""
    text = run(*hosts.ns("a", sys.executable, "-c",
                         "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())",
                         f"http://127.0.0.1:{port}/metrics")).stdout
    total = 0
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def blocked(hosts, port, into):
    """Nanoseconds the edges into node `into` spent full."""
    return metric(hosts, port, "camflow_edge_blocked_nanoseconds_total", f'to="{into}"')


def events(subscriber, after=0.0):
    with subscriber.lock:
        every = list(subscriber.events)
    return [e for e in every if e["t"] >= after]


def recovery(subscriber, since, stream="cam1"):
    """After `since`: when cam1's messages came back, what the sequence numbers
    say was lost, and the pictures: from the next keyframe after a loss (and
    how much video the loss took, from their times), or simply on if nothing
    was lost (host A queues what it publishes while a link is down, up to
    its high-water mark)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        every = events(subscriber)
        start = next((i for i, e in enumerate(every) if e["t"] >= since), len(every))
        later = every[start:]
        messages = [e for e in later if e.get("stream") == stream and "sequence" in e]
        loss = next((i for i, e in enumerate(later) if e.get("stream") == stream and (e.get("gap") or e.get("restarted"))), None)
        pictures = [e for e in later[loss or 0:] if e.get("decoded") == stream]
        # Wait a moment for a loss to show before deciding there was none.
        if messages and pictures and (loss is not None or time.time() - since > 5):
            result = {"resumeSeconds": round(messages[0]["t"] - since, 3),
                      "lostMessages": sum(e["gap"] for e in messages),
                      "restartSeen": any(e["restarted"] for e in messages),
                      "firstPictureSeconds": round(pictures[0]["t"] - since, 3),
                      "firstPictureKeyframe": pictures[0]["keyframe"]}
            if loss is not None:
                before = [e for e in every[:start + loss] if e.get("decoded") == stream]
                if before:
                    result["videoSecondsLost"] = round(pictures[0]["pts"] - before[-1]["pts"] - 0.04, 3)
            return result
        time.sleep(0.1)
    messages = [e for e in events(subscriber, since) if e.get("stream") == stream and "sequence" in e]
    return {"resumeSeconds": round(messages[0]["t"] - since, 3) if messages else None, "lostMessages": 0,
            "firstPictureKeyframe": False, "note": "no picture within 30 s"}


def check_recordings(root):
    """Per stream: consecutive files with no gap between them, and every file decoding cleanly."""
    entries = [json.loads(line) for line in (pathlib.Path(root) / "index.jsonl").read_text().splitlines() if line]
    report = {"files": len(entries), "undecodable": [], "gaps": []}
    for stream in sorted({e["stream"] for e in entries}):
        own = sorted((e for e in entries if e["stream"] == stream), key=lambda e: e["wall_start"])
        for before, after in zip(own, own[1:]):
            end = before["wall_start"] + (before["end"] - before["start"])
            if after["wall_start"] - end > 1.0:
                report["gaps"].append({"stream": stream, "seconds": round(after["wall_start"] - end, 3)})
    for entry in entries:
        decoded = run("ffmpeg", "-v", "error", "-i", str(pathlib.Path(root) / entry["path"]), "-f", "null", "-", check=False)
        if decoded.returncode != 0 or decoded.stderr.strip():
            report["undecodable"].append(entry["path"])
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--camflow", default=str(ROOT / ".build/debug/camflow"))
    parser.add_argument("--python", default=str(ROOT / ".venv/bin/python"), help="a Python with camflow_client")
    parser.add_argument("--cut", type=float, default=10)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    # A stop (a test's timeout) still removes the namespaces and the processes: `finally` runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reason = can_make_namespaces()
    if reason:
        print(f"multihost: skipped: {reason}", file=sys.stderr)
        return SKIP
    work = tempfile.mkdtemp(prefix="camflow-multihost-")
    hosts = Hosts()
    children = []
    report = {"cutSeconds": args.cut, "gopSeconds": GOP_SECONDS, "failures": []}
    try:
        netem = has_netem()
        report["cutBy"] = "tc netem loss 100%" if netem else "ip link set down (this kernel has no netem)"
        hosts.create()
        broker_command = hosts.ns("b", args.camflow, "broker", "--frontend", "tcp://10.231.0.2:5555",
                                  "--backend", "tcp://10.231.0.5:5556", "--heartbeat", "1s")
        broker = Process(broker_command, "broker", work)
        children.append(broker)
        broker.wait_for(r"^backend: ")
        sim = Process(hosts.ns("a", args.camflow, "sim", "--cameras", "4", "--port", "0"), "sim", work)
        children.append(sim)
        sim.wait_for(r"^camera 4: ")
        urls = {f"cam{m.group(1)}": m.group(2) for _, line in sim.snapshot() for m in [re.match(r"^camera (\d): (ws://\S+)", line)] if m}
        recordings = pathlib.Path(work) / "recordings"
        nodes = []
        for name, url in sorted(urls.items()):
            nodes.append(f'  {name}: {{ type: instar-camera, url: "{url}", username: admin, password: instar }}')
            nodes.append(f"  parse-{name}: {{ type: mp4-parse, inputs: [{name}], frames: true, emit: [init, fragment, frame] }}")
        parses = ", ".join(f"parse-{name}" for name in sorted(urls))
        pipeline = pathlib.Path(work) / "host-a.yaml"
        pipeline.write_text("name: host-a\nnodes:\n" + "\n".join(nodes) + f"""
  record: {{ type: file-record, inputs: [{parses}], path: "{recordings}/{{stream}}/%H%M%S.mp4", segment: 10s }}
  publish: {{ type: zmq-publish, inputs: [{parses}], endpoint: "tcp://10.231.0.2:5555", connect: true, kinds: [init, frame] }}
  web: {{ type: web, inputs: [parse-cam1], bind: "127.0.0.1:0", hls: false }}
""")
        camflow_a = Process(hosts.ns("a", args.camflow, "run", str(pipeline), "--status-interval", "0"), "camflow-a", work)
        children.append(camflow_a)
        # The web sink says where it serves on stderr: read it from the log file.
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline:
            found = re.search(r"serving http://127\.0\.0\.1:(\d+)/", pathlib.Path(camflow_a.log.name).read_text(errors="replace"))
            port = found and found.group(1)
            time.sleep(0.1)
        if port is None:
            raise RuntimeError(f"camflow on host A did not start; see {camflow_a.log.name}")
        subscriber = Process(hosts.ns("c", args.python, str(ROOT / "Tests/Peers/multihost_subscriber.py"), "tcp://10.231.0.5:5556",
                                      "--streams", *sorted(urls), "--decode", "cam1"), "subscriber", work)
        children.append(subscriber)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                {e.get("stream") for e in events(subscriber)} >= set(urls) and any("decoded" in e for e in events(subscriber))):
            time.sleep(0.2)
        if not any("decoded" in e for e in events(subscriber)):
            raise RuntimeError(f"host C decoded nothing within 60s; see {subscriber.log.name}")
        time.sleep(4)  # settle: every queue at its working level
        # `ip netns exec` execs camflow: the child is camflow itself.
        camflow_pid = camflow_a.process.pid
        baseline = usage_of(camflow_pid)
        # A window as long as the cut, without it: the edges' blocked time from the bursts
        # of frames a 2 s fragment brings, which the cut must not add to. A wait is counted
        # when it ends and the counters are exported once a second: each window is read
        # 3 s after it closes.
        settle = 3
        control_start = {into: blocked(hosts, port, into) for into in ("publish", "record")}
        time.sleep(args.cut + settle)
        control_end = {into: blocked(hosts, port, into) for into in ("publish", "record")}
        report["blockedWithoutCutMs"] = {k: round((control_end[k] - control_start[k]) / 1e6, 3) for k in control_end}

        # The cut.
        blocked_before = {into: blocked(hosts, port, into) for into in ("publish", "record")}
        published_before = metric(hosts, port, "camflow_node_packets_in_total", 'node="publish"')
        hosts.cut(True, netem)
        cut_at = time.time()
        time.sleep(args.cut)
        published_during = metric(hosts, port, "camflow_node_packets_in_total", 'node="publish"') - published_before
        hosts.cut(False, netem)
        restored = time.time()
        report["link"] = recovery(subscriber, restored)
        time.sleep(max(0, restored + settle - time.time()))
        blocked_after = {into: blocked(hosts, port, into) for into in ("publish", "record")}
        during = [e for e in events(subscriber) if cut_at + 3 < e["t"] < restored and e.get("stream") == "cam1"]
        report["link"]["messagesDuringCut"] = len(during)
        report["packetsIntoPublishDuringCut"] = published_during
        report["blockedDuringCutMs"] = {k: round((blocked_after[k] - blocked_before[k]) / 1e6, 3) for k in blocked_after}

        # The broker, killed and started again.
        time.sleep(3)
        broker.stop(signal.SIGKILL)
        time.sleep(1)
        broker = Process(broker_command, "broker-2", work)
        children.append(broker)
        broker.wait_for(r"^backend: ")
        started = time.time()
        report["broker"] = recovery(subscriber, started)

        time.sleep(5)
        after = usage_of(camflow_pid)
        report["recordDropped"] = metric(hosts, port, "camflow_node_dropped_total", 'node="record"')
        report["hostA"] = {"rssKiB": [baseline[0], after[0]], "fds": [baseline[1], after[1]]}
        camflow_a.stop(signal.SIGINT, timeout=60)
        report["recordings"] = check_recordings(recordings)
    except Exception as error:  # noqa: BLE001: a failed step is reported, and the hosts removed
        report["failures"].append(f"{type(error).__name__}: {error}")
    finally:
        for child in reversed(children):
            child.stop(signal.SIGKILL if child.name.startswith("broker") else signal.SIGTERM, timeout=20)
        hosts.remove()

    fails = report["failures"]
    for key in ("link", "broker"):
        part = report.get(key, {})
        if part.get("resumeSeconds") is None:
            fails.append(f"{key}: host C's messages did not resume")
            continue
        if part["resumeSeconds"] > GOP_SECONDS:
            fails.append(f"{key}: messages resumed {part['resumeSeconds']} s after, more than one GOP ({GOP_SECONDS} s)")
        if part["lostMessages"] and not part["firstPictureKeyframe"]:
            fails.append(f"{key}: the first picture after the loss was not a keyframe")
        # What comes first may be video queued during the cut: live pictures follow within a GOP.
        if part.get("firstPictureSeconds") is None or part["firstPictureSeconds"] > part["resumeSeconds"] + GOP_SECONDS + 0.5:
            fails.append(f"{key}: no picture within a GOP of the messages' return: {part.get('firstPictureSeconds')} s")
    if "link" in report and report["link"].get("resumeSeconds") is not None:
        if report["link"]["lostMessages"] == 0:
            fails.append("link: no loss reported from the sequence numbers after a 10 s cut")
        if report["link"]["messagesDuringCut"]:
            fails.append("link: host C received cam1 messages while the link was cut")
    for into, ms in report.get("blockedDuringCutMs", {}).items():
        usual = report.get("blockedWithoutCutMs", {}).get(into, 0)
        # Waiting on the network would block for seconds; a burst of a fragment's frames, milliseconds.
        if ms > 2 * usual + 250:
            fails.append(f"host A's edges into {into} were blocked {ms} ms during the cut, {usual} ms without it")
    recordings = report.get("recordings")
    if report.get("recordDropped"):
        fails.append(f"file-record dropped {report['recordDropped']} fragments")
    if "packetsIntoPublishDuringCut" in report and report["packetsIntoPublishDuringCut"] < 100:
        fails.append(f"only {report['packetsIntoPublishDuringCut']} packets reached zmq-publish during the cut: it stalled")
    if recordings:
        if recordings["gaps"]:
            fails.append(f"recordings have gaps: {recordings['gaps']}")
        if recordings["undecodable"]:
            fails.append(f"recordings that do not decode: {recordings['undecodable']}")
        if recordings["files"] < 8:
            fails.append(f"only {recordings['files']} recordings")
    host = report.get("hostA")
    if host:
        if host["fds"][1] > host["fds"][0] + 2:
            fails.append(f"host A's file descriptors grew from {host['fds'][0]} to {host['fds'][1]}")
        if host["rssKiB"][1] > host["rssKiB"][0] + 16 * 1024:
            fails.append(f"host A's memory grew from {host['rssKiB'][0]} to {host['rssKiB'][1]} KiB")
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        pathlib.Path(args.json).write_text(text)
    if not fails:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"multihost: FAILED ({len(fails)}); logs in {work}", file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
