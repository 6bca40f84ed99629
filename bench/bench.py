#!/usr/bin/env python3
"""Fan-out benchmark: mediarouter vs nginx-rtmp, in one run, on loopback only.

Starts each server on free 127.0.0.1 ports, publishes a generated clip with ffmpeg,
runs mediarouter-load per read protocol and reader count, and samples the server's CPU
(/proc/<pid>/stat, all its processes) over exactly the load tool's measurement window.
Writes bench/results/<date>.json and the table in BENCHMARKS.md; prints PASS/FAIL per
target. Run through scripts/bench.sh, which builds and installs what this needs.
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
SERVER = os.path.join(RELEASE, "mediarouter")
LOAD = os.path.join(RELEASE, "mediarouter-load")


def use_binaries(directory):
    global SERVER, LOAD
    SERVER = os.path.join(directory, "mediarouter")
    LOAD = os.path.join(directory, "mediarouter-load")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
FPS = 30.0
NGINX_RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_pair():
    for p in range(20000, 30000, 2):
        try:
            with socket.socket(type=socket.SOCK_DGRAM) as a, socket.socket(type=socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
                return p, p + 1
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair")


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


def children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def tree(pid):
    pids = [pid]
    for c in children(pid):
        pids += tree(c)
    return pids


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICK


def rss_bytes(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def make_clip(path):
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "30", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
         "-b:v", "2M", "-maxrate", "2M", "-bufsize", "2M",
         "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "0",
         "-c:a", "aac", "-b:a", "128k", "-f", "flv", path],
        check=True)


class Target:
    """A server under test: its processes, RTMP publish URL and read URLs."""

    def __init__(self, name, proc, publish_url, read_urls):
        self.name = name
        self.proc = proc
        self.publish_url = publish_url
        self.read_urls = read_urls
        self.publisher = None

    def pids(self):
        return tree(self.proc.pid)

    def start_publisher(self, clip, log):
        self.publisher = subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip,
             "-c", "copy", "-f", "flv", self.publish_url],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        # Readable once a single reader gets frames.
        url = self.read_urls["rtmp"]
        end = time.time() + 20
        while time.time() < end:
            r = subprocess.run([LOAD, "-n", "1", "--warmup", "0", "-d", "0.5", "--timeout", "3", url],
                               capture_output=True, text=True)
            if r.returncode == 0 and "1/1 readers connected, 0 failed" in r.stderr:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name}: stream never became readable")

    def stop(self):
        for p in (self.publisher, self.proc):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()


MEDIAROUTER_EXTRA = ""


def start_mediarouter(work, log, extra=""):
    ports = {k: free_port() for k in ("rtsp", "rtp", "rtcp", "rtmp", "http", "webrtc")}
    # RTP/RTCP ports must be a consecutive even/odd pair (bind(0) prefers odd ports).
    ports["rtp"], ports["rtcp"] = free_udp_pair()
    cfg = os.path.join(work, "mediarouter.yml")
    with open(cfg, "w") as f:
        f.write(f"""logLevel: info
rtspAddress: 127.0.0.1:{ports['rtsp']}
rtpAddress: 127.0.0.1:{ports['rtp']}
rtcpAddress: 127.0.0.1:{ports['rtcp']}
rtmpAddress: 127.0.0.1:{ports['rtmp']}
hlsAddress: 127.0.0.1:{ports['http']}
webrtcAddress: 127.0.0.1:{ports['webrtc']}
webrtcLocalUDPAddress: 127.0.0.1:0
srtAddress: 127.0.0.1:0
{MEDIAROUTER_EXTRA}
{extra}
paths:
  all_others:
""")
    proc = subprocess.Popen([SERVER, cfg], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    for k in ("rtsp", "rtmp", "http"):
        wait_port(ports[k])
    return Target("mediarouter", proc, f"rtmp://127.0.0.1:{ports['rtmp']}/live/bench", {
        "rtmp": f"rtmp://127.0.0.1:{ports['rtmp']}/live/bench",
        "rtsp-tcp": f"rtsp://127.0.0.1:{ports['rtsp']}/live/bench",
        "rtsp-udp": f"rtsp://127.0.0.1:{ports['rtsp']}/live/bench",
        "http-flv": f"http://127.0.0.1:{ports['http']}/live/bench.flv",
        "hls": f"http://127.0.0.1:{ports['http']}/live/bench/index.m3u8",
        "webrtc": f"http://127.0.0.1:{ports['webrtc']}/live/bench/whep",
    })


def start_nginx(work, log):
    prefix = os.path.join(work, "nginx")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    # A root master runs its worker as another user, which writes and serves the HLS files.
    hls = os.path.join(prefix, "hls")
    os.makedirs(hls, exist_ok=True)
    for d in (work, prefix):
        os.chmod(d, 0o755)
    os.chmod(hls, 0o777)
    rtmp, http = free_port(), free_port()
    conf = os.path.join(prefix, "nginx.conf")
    # One worker: nginx-rtmp's live fan-out is per worker (the usual deployment).
    with open(conf, "w") as f:
        f.write(f"""load_module {NGINX_RTMP_MODULE};
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 10000; }}
rtmp {{
    access_log {prefix}/logs/rtmp_access.log;
    server {{
        listen 127.0.0.1:{rtmp};
        chunk_size 4096;
        application live {{
            live on;
            # HLS as mediarouter's HLS phase runs it: 1 s segments (the clip's GOP), 7 listed.
            hls on;
            hls_path {prefix}/hls;
            hls_fragment 1s;
            hls_playlist_length 7s;
        }}
    }}
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{http};
        location /hls {{
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            root {prefix};
            add_header Cache-Control no-cache;
        }}
    }}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", prefix, "-c", conf], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    wait_port(rtmp)
    return Target("nginx-rtmp", proc, f"rtmp://127.0.0.1:{rtmp}/live/bench",
                  {"rtmp": f"rtmp://127.0.0.1:{rtmp}/live/bench",
                   "hls": f"http://127.0.0.1:{http}/hls/bench.m3u8"})


def baseline(target, window):
    pids = target.pids()
    c0 = cpu_seconds(pids)
    time.sleep(window)
    return {"cpu_per_s": (cpu_seconds(pids) - c0) / window, "rss": rss_bytes(pids)}


def run_load(target, proto, n, window, base, work):
    url = target.read_urls[proto]
    out = os.path.join(work, f"{target.name}-{proto}-{n}.json")
    cmd = [LOAD, "-n", str(n), "--ramp", "1000", "--warmup", "1", "-d", str(window),
           "--fps", str(FPS), "--timeout", "10", "--markers", "--json", out, url]
    if proto == "rtsp-udp":
        cmd[1:1] = ["--rtsp-transport", "udp"]
    pids = target.pids()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    c0 = c1 = rss = None
    t0 = t1 = None
    for line in p.stdout:
        line = line.strip()
        if line == "window-start":
            c0, t0 = cpu_seconds(pids), time.monotonic()
        elif line == "window-end":
            c1, t1 = cpu_seconds(pids), time.monotonic()
            rss = rss_bytes(pids)
    err = p.stderr.read()
    p.wait()
    if p.returncode != 0 or c1 is None:
        raise RuntimeError(f"load tool failed for {target.name} {proto} n={n}:\n{err}")
    with open(out) as f:
        s = json.load(f)["summary"]
    span = t1 - t0
    cpu = c1 - c0
    readers = max(s["connected"], 1)
    return {
        "server": target.name, "protocol": proto, "readers": n,
        "connected": s["connected"], "failed": s["failed"], "errors": s["first_errors"],
        "window_s": span,
        "server_cpu_s": cpu,
        "cpu_per_reader_s": max(cpu - base["cpu_per_s"] * span, 0.0) / (readers * span),
        "rss_per_reader_kib": max(rss - base["rss"], 0) / readers / 1024,
        "delivery_mean": s["delivery_mean"], "delivery_min": s["delivery_min"],
        "gaps": s["gaps_total"],
        "ttff_median_ms": s["ttff_median_ms"], "ttff_p95_ms": s["ttff_p95_ms"],
        "mbytes_per_s": s["bytes_per_s"] / 1e6,
        "load_tool_cpu_per_s": s["tool_cpu_per_s"],
    }


def ffmpeg_frames(path):
    """The last `frame=` an ffmpeg `-progress` file reports (0 before the first)."""
    try:
        with open(path) as f:
            frames = [l for l in f.read().splitlines() if l.startswith("frame=")]
        return int(frames[-1].split("=", 1)[1]) if frames else 0
    except (OSError, ValueError):
        return 0


def run_ffmpeg_readers(target, proto, n, window, base, work, label=None):
    """CPU per reader-second with n real players: `ffmpeg -c copy -f null` readers,
    measured once every one of them reports frames."""
    url = target.read_urls[proto]
    label = label or proto
    opts = ["-rtsp_transport", "tcp"] if proto == "rtsp-tcp" else []
    progress = [os.path.join(work, f"ff-{target.name}-{label}-{i}.progress") for i in range(n)]
    procs = []
    try:
        for pf in progress:
            procs.append(subprocess.Popen(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-progress", pf, "-stats_period", "0.5",
                 *opts, "-i", url, "-c", "copy", "-f", "null", "-"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        end = time.time() + 60
        while time.time() < end and not all(ffmpeg_frames(pf) > 0 for pf in progress):
            time.sleep(0.2)
        running = sum(1 for p in procs if p.poll() is None)
        reading = sum(1 for pf in progress if ffmpeg_frames(pf) > 0)
        if running < n or reading < n:
            raise RuntimeError(f"{target.name} {label}: {reading}/{n} ffmpeg readers got frames, "
                               f"{running} running")
        pids = target.pids()
        f0 = [ffmpeg_frames(pf) for pf in progress]
        # Memory from this phase on: the allocator keeps what earlier phases used.
        rss0 = rss_bytes(pids)
        c0, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep(window)
        c1, t1 = cpu_seconds(pids), time.monotonic()
        rss = rss_bytes(pids)
        f1 = [ffmpeg_frames(pf) for pf in progress]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    span = t1 - t0
    # ffmpeg reports every 0.5 s, and HLS readers take whole segments: read delivery as
    # a rough check that readers kept up, not as a loss figure.
    delivery = statistics.median((b - a) / (span * FPS) for a, b in zip(f0, f1))
    return {
        "phase": "ffmpeg", "server": target.name, "protocol": label, "readers": n,
        "connected": n, "failed": 0, "errors": [], "window_s": span,
        "server_cpu_s": c1 - c0,
        "cpu_per_reader_s": max(c1 - c0 - base["cpu_per_s"] * span, 0.0) / (n * span),
        "rss_per_reader_kib": max(rss - rss0, 0) / n / 1024,
        "delivery_mean": delivery, "delivery_min": min((b - a) / (span * FPS) for a, b in zip(f0, f1)),
        "gaps": 0, "ttff_median_ms": None, "ttff_p95_ms": None, "mbytes_per_s": 0.0,
        "load_tool_cpu_per_s": 0.0,
    }


def run_latency(target, proto, n, window, clip, work, label=None):
    """Server-added latency: the load tool publishes the clip itself (RTMP) and its
    readers match each video frame to the moment it was written (same clock)."""
    url = target.read_urls[proto].replace("/bench", "/lat")
    out = os.path.join(work, f"{target.name}-{proto}-{n}-latency.json")
    cmd = [LOAD, "-n", str(n), "--ramp", "1000", "--warmup", "2", "-d", str(window),
           "--fps", str(FPS), "--timeout", "10", "--json", out,
           "--publish", target.publish_url.replace("/bench", "/lat"), "--clip", clip, url]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"load tool failed for {target.name} {proto} latency:\n{r.stderr}")
    with open(out) as f:
        s = json.load(f)["summary"]
    return {
        "phase": "latency", "server": target.name, "protocol": label or proto, "readers": n,
        "connected": s["connected"], "failed": s["failed"],
        "latency_median_ms": s.get("latency_median_ms"), "latency_p95_ms": s.get("latency_p95_ms"),
        "latency_samples": s.get("latency_samples", 0),
    }


def latency_table(rows):
    lines = ["| server | protocol | readers | server-added latency median / p95 ms | frames |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['server']} | {r['protocol']} | {r['readers']} "
                     f"| {fmt(r['latency_median_ms'], '.1f')} / {fmt(r['latency_p95_ms'], '.1f')} "
                     f"| {r['latency_samples']} |")
    return "\n".join(lines)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows):
    head = ("| run | server | protocol | readers | connected | CPU µs per reader-s | RSS KiB/reader "
            "| delivery mean/min | gaps | first keyframe median/p95 ms | MB/s | load tool CPU |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(
            f"| {r.get('phase', '-')} | {r['server']} | {r['protocol']} | {r['readers']} | {r['connected']} "
            f"| {r['cpu_per_reader_s'] * 1e6:.0f} | {r['rss_per_reader_kib']:.1f} "
            f"| {r['delivery_mean']:.4f} / {r['delivery_min']:.4f} | {r['gaps']} "
            f"| {fmt(r['ttff_median_ms'], '.1f')} / {fmt(r['ttff_p95_ms'], '.1f')} "
            f"| {r['mbytes_per_s']:.0f} | {r['load_tool_cpu_per_s']:.2f} |")
    return "\n".join(lines)


def median_of(rows, server, proto, n, key):
    vals = [r[key] for r in rows if r["server"] == server and r["protocol"] == proto
            and r["readers"] == n and r[key] is not None]
    return statistics.median(vals) if vals else None


def targets(all_rows, repeat_n):
    res = []
    paired_rows = [r for r in all_rows if r.get("phase") == "paired"] or all_rows
    lat = [r for r in all_rows if r.get("phase") == "latency"]
    rows = [r for r in all_rows if r.get("phase") in (None, "sweep")]
    ff = [r for r in all_rows if r.get("phase") == "ffmpeg"]
    for r in ff:
        if r["server"] != "mediarouter":
            continue
        base = "hls" if r["protocol"].startswith("hls") else "rtmp"
        ng_ff = [x for x in ff if x["server"] == "nginx-rtmp" and x["protocol"] == base
                 and x.get("round") == r.get("round")]
        if ng_ff and ng_ff[0]["cpu_per_reader_s"]:
            v = r["cpu_per_reader_s"] / ng_ff[0]["cpu_per_reader_s"]
            res.append((f"{r['protocol']} CPU per reader-s at N={r['readers']} ffmpeg readers "
                        f"<= 0.5 x nginx-rtmp {base.upper()}", v, v <= 0.5))
    for r in lat:
        if r["protocol"].startswith("hls-") and r["latency_median_ms"] is not None:
            ng_l = [x for x in lat if x["server"] == "nginx-rtmp" and x["protocol"] == "hls"
                    and x.get("round") == r.get("round") and x["latency_median_ms"] is not None]
            if ng_l:
                v = r["latency_median_ms"] / ng_l[0]["latency_median_ms"]
                res.append((f"{r['protocol']}: latency median <= nginx-rtmp HLS's (ratio)", v, v <= 1.0))
    for r in lat:
        if (r["server"] == "mediarouter" and not r["protocol"].startswith("hls")
                and r["latency_median_ms"] is not None):
            ok = r["latency_median_ms"] <= 15 and r["latency_p95_ms"] <= 30
            res.append((f"{r['protocol']}: server-added latency median <= 15 ms and p95 <= 30 ms "
                        f"(median; p95 {r['latency_p95_ms']:.1f})", r["latency_median_ms"], ok))
    mr = lambda p, n, k="cpu_per_reader_s": median_of(rows, "mediarouter", p, n, k)
    paired = lambda p: median_of(paired_rows, "mediarouter", p, repeat_n, "cpu_per_reader_s")
    ng = median_of(paired_rows, "nginx-rtmp", "rtmp", repeat_n, "cpu_per_reader_s")
    rtmp = paired("rtmp")
    # Issue 19: every reader protocol at half nginx-rtmp's CPU, in the paired rounds
    # (the most reliable figure) and at every reader count the sweep ran for both.
    for p in ("rtmp", "rtsp-tcp", "http-flv"):
        v = paired(p)
        if ng and v is not None:
            res.append((f"{p} CPU per reader-s at N={repeat_n} <= 0.5 x nginx-rtmp RTMP (paired)",
                        v / ng, v / ng <= 0.5))
    for p in ("rtsp-tcp", "http-flv"):
        v = paired(p)
        if v is not None and rtmp:
            res.append((f"{p} CPU <= 1.2 x mediarouter RTMP at N={repeat_n}", v / rtmp, v / rtmp <= 1.2))
    if not rows:
        return res
    for n in sorted({r["readers"] for r in rows}):
        ng_n = median_of(rows, "nginx-rtmp", "rtmp", n, "cpu_per_reader_s")
        for p in ("rtmp", "rtsp-tcp", "http-flv"):
            v = mr(p, n)
            if ng_n and v is not None:
                res.append((f"{p} CPU per reader-s at N={n} <= 0.5 x nginx-rtmp RTMP (sweep)",
                            v / ng_n, v / ng_n <= 0.5))
    top = max(r["readers"] for r in rows)
    for p in ("rtmp", "rtsp-tcp", "http-flv", "rtsp-udp", "hls"):
        v = mr(p, top, "delivery_mean")
        if v is not None:
            res.append((f"{p}: {top} readers at >= 99% delivery", v, v >= 0.99))
    # Memory per reader is the slope between the smallest and largest reader count:
    # a fixed cost (allocator arenas, buffers of the first connections) spread over
    # 100 readers is not what each reader costs.
    slopes = []
    for p in {r["protocol"] for r in rows if r["server"] == "mediarouter"}:
        runs = sorted((r for r in rows if r["server"] == "mediarouter" and r["protocol"] == p),
                      key=lambda r: r["readers"])
        lo, hi = runs[0], runs[-1]
        if hi["readers"] > lo["readers"]:
            rss = lambda r: r["rss_per_reader_kib"] * r["connected"]
            slopes.append((rss(hi) - rss(lo)) / (hi["connected"] - lo["connected"]))
    if slopes:
        worst = max(slopes)
        res.append(("RSS per added reader <= 64 KiB (worst protocol)", worst, worst <= 64))
    low = min(r["readers"] for r in rows)
    for p in ("rtmp", "rtsp-tcp", "http-flv"):
        v = mr(p, low, "ttff_median_ms")
        if v is not None:
            res.append((f"{p}: first keyframe median <= 50 ms at N={low}", v, v <= 50))
    return res


def update_markdown(path, text):
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    doc = open(path).read() if os.path.exists(path) else f"# Benchmarks\n\n{start}\n{end}\n"
    if start not in doc:
        doc += f"\n{start}\n{end}\n"
    before, rest = doc.split(start, 1)
    after = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(f"{before}{start}\n{text}\n{end}{after}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readers", default="100,500,1000,2000")
    ap.add_argument("--protocols", default="rtmp,rtsp-tcp,http-flv,rtsp-udp,hls")
    ap.add_argument("--window", type=float, default=6.0)
    ap.add_argument("--repeat", type=int, default=3, help="paired rounds for the CPU targets (median)")
    ap.add_argument("--repeat-readers", type=int, default=1000)
    ap.add_argument("--ffmpeg-window", type=float, default=20.0,
                    help="window of the ffmpeg-reader and HLS phases: 100 readers for 6 s are a "
                         "few CPU ticks, too few to rank servers")
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--latency-readers", type=int, default=100,
                    help="readers of the latency runs (0: no latency runs)")
    ap.add_argument("--ffmpeg-readers", type=int, default=100,
                    help="ffmpeg readers per protocol and server, after the paired rounds (0: none)")
    ap.add_argument("--hls-readers", type=int, default=100,
                    help="ffmpeg HLS readers (and latency readers) per variant and server (0: no HLS phase)")
    ap.add_argument("--hls-variants", default="mpegts,fmp4")
    ap.add_argument("--webrtc-readers", default="1,10,50",
                    help="WHEP viewer counts (load tool, str0m) for CPU per WebRTC viewer; '' skips")
    ap.add_argument("--no-markdown", action="store_true")
    ap.add_argument("--set", action="append", default=[],
                    help="extra top-level mediarouter.yml line, e.g. 'writeMerge: 100ms'")
    ap.add_argument("--from-json", help="recompute targets and the table from an earlier result")
    ap.add_argument("--bin-dir", help="take mediarouter and mediarouter-load from here")
    ap.add_argument("--out", help="JSON result file (default bench/results/<date>.json)")
    args = ap.parse_args()
    if args.bin_dir:
        use_binaries(args.bin_dir)
    global MEDIAROUTER_EXTRA
    MEDIAROUTER_EXTRA = "\n".join(args.set)
    ns = [int(n) for n in args.readers.split(",")]
    protos = args.protocols.split(",")
    started = time.time()
    if args.from_json:
        with open(args.from_json) as f:
            prev = json.load(f)
        report(args, prev["runs"], prev["baselines"], started, prev["date"][:10], prev.get("duration_s"))
        return
    work = tempfile.mkdtemp(prefix="mediarouter-bench-")
    clip = os.path.join(ROOT, "target", "bench", "clip-720p30.flv")
    make_clip(clip)
    log = open(os.path.join(work, "servers.log"), "w")
    rows = []
    plan = [("mediarouter", start_mediarouter, p) for p in protos]
    if not args.no_nginx:
        plan.append(("nginx-rtmp", start_nginx, "rtmp"))
    bases = {}
    try:
        # Sweep: a fresh server per protocol, readers in ascending order, so memory the
        # allocator keeps after a run can't be mistaken for (or hide) the next run's use.
        for name, start, p in plan:
            t = start(work, log)
            try:
                t.start_publisher(clip, log)
                base = baseline(t, 3.0)
                bases[f"{name} {p}"] = base
                print(f"{name} ({p}): publisher-only CPU {base['cpu_per_s']:.3f} s/s, "
                      f"RSS {base['rss'] / 2**20:.1f} MiB", flush=True)
                for n in ns:
                    r = run_load(t, p, n, args.window, base, work)
                    r["phase"] = "sweep"
                    rows.append(r)
                    print(table([r]).splitlines()[-1], flush=True)
            finally:
                t.stop()
        # Latency: the load tool publishes and reads, both servers side by side.
        if args.latency_readers > 0:
            lat_targets = [start_mediarouter(work, log)]
            if not args.no_nginx:
                lat_targets.append(start_nginx(work, log))
            try:
                for t in lat_targets:
                    for p in ([q for q in ("rtmp", "http-flv", "rtsp-tcp") if q in protos]
                              if t.name == "mediarouter" else ["rtmp"]):
                        r = run_latency(t, p, args.latency_readers, args.window, clip, work)
                        rows.append(r)
                        print(latency_table([r]).splitlines()[-1], flush=True)
            finally:
                for t in lat_targets:
                    t.stop()
        # Paired: the runs the CPU targets compare, round-robin over both servers
        # (running side by side) and the protocols, so drift in the machine's load
        # hits every side alike; the targets take the median of each.
        paired = [p for p in ("rtmp", "rtsp-tcp", "http-flv") if p in protos]
        targets_up = [start_mediarouter(work, log)]
        if not args.no_nginx:
            targets_up.append(start_nginx(work, log))
        try:
            for t in targets_up:
                t.start_publisher(clip, log)
            pbase = {t.name: baseline(t, 3.0) for t in targets_up}
            bases.update({f"{k} paired": v for k, v in pbase.items()})
            for _ in range(args.repeat):
                for t in targets_up:
                    for p in (paired if t.name == "mediarouter" else ["rtmp"]):
                        r = run_load(t, p, args.repeat_readers, args.window, pbase[t.name], work)
                        r["phase"] = "paired"
                        rows.append(r)
                        print(table([r]).splitlines()[-1] + " (paired)", flush=True)
            # Real players at the reader count the issue's table used.
            if args.ffmpeg_readers > 0:
                for t in targets_up:
                    for p in (paired if t.name == "mediarouter" else ["rtmp"]):
                        r = run_ffmpeg_readers(t, p, args.ffmpeg_readers, args.ffmpeg_window,
                                               pbase[t.name], work)
                        rows.append(r)
                        print(table([r]).splitlines()[-1] + " (ffmpeg readers)", flush=True)
        finally:
            for t in targets_up:
                t.stop()
        # WebRTC viewers (mediarouter only: nginx-rtmp has none), and their latency.
        if args.webrtc_readers:
            t = start_mediarouter(work, log)
            try:
                t.start_publisher(clip, log)
                base = baseline(t, 3.0)
                bases["mediarouter webrtc"] = base
                for n in [int(x) for x in args.webrtc_readers.split(",")]:
                    r = run_load(t, "webrtc", n, args.window, base, work)
                    r["phase"] = "webrtc"
                    rows.append(r)
                    print(table([r]).splitlines()[-1], flush=True)
                if args.latency_readers > 0:
                    r = run_latency(t, "webrtc", min(args.latency_readers, 50), args.window, clip, work)
                    rows.append(r)
                    print(latency_table([r]).splitlines()[-1], flush=True)
            finally:
                t.stop()
        # HLS, per variant, against nginx-rtmp's MPEG-TS HLS with the same 1 s segments.
        if args.hls_readers > 0:
            for variant in args.hls_variants.split(","):
                hls_up = [start_mediarouter(work, log, f"hlsVariant: {variant}\nhlsSegmentDuration: 1s")]
                if not args.no_nginx:
                    hls_up.append(start_nginx(work, log))
                try:
                    for t in hls_up:
                        t.start_publisher(clip, log)
                    hbase = {t.name: baseline(t, 3.0) for t in hls_up}
                    for t in hls_up:
                        label = f"hls-{variant}" if t.name == "mediarouter" else "hls"
                        r = run_ffmpeg_readers(t, "hls", args.hls_readers, args.ffmpeg_window,
                                               hbase[t.name], work, label)
                        r["round"] = variant
                        rows.append(r)
                        print(table([r]).splitlines()[-1] + " (ffmpeg readers)", flush=True)
                    for t in hls_up:
                        label = f"hls-{variant}" if t.name == "mediarouter" else "hls"
                        r = run_latency(t, "hls", args.hls_readers, args.window, clip, work, label)
                        r["round"] = variant
                        rows.append(r)
                        print(latency_table([r]).splitlines()[-1], flush=True)
                finally:
                    for t in hls_up:
                        t.stop()
    finally:
        log.close()
    report(args, rows, bases, started, datetime.datetime.now().strftime("%Y-%m-%d"), None)
    shutil.rmtree(work, ignore_errors=True)


def report(args, rows, bases, started, date, duration):
    res = targets(rows, args.repeat_readers)
    lines = [f"{'PASS' if ok else 'FAIL'}  {what}: {val:.3f}" for what, val, ok in res]
    print("\n" + "\n".join(lines))
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" :\t")
    doc = {
        "date": datetime.datetime.now().isoformat(timespec="seconds") if duration is None else date,
        "machine": {"cpu": cpu, "cores": os.cpu_count()},
        "clip": "1280x720 30 fps H.264 2 Mbit/s, 1 s GOP, no B-frames + AAC 128 kbit/s",
        "window_s": args.window, "baselines": bases, "runs": rows,
        "targets": [{"target": w, "value": v, "pass": ok} for w, v, ok in res],
        "duration_s": duration if duration is not None else time.time() - started,
    }
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = args.out or os.path.join(ROOT, "bench", "results", f"{date}.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
    md = (f"Last run: {date} on {cpu} ({os.cpu_count()} cores), {doc['duration_s']:.0f} s, window {args.window:.0f} s, "
          f"medians of {args.repeat} at N={args.repeat_readers}; raw figures in `bench/results/{date}.json`.\n\n"
          + table([r for r in rows if r.get("phase") != "latency"]) + "\n\n"
          + latency_table([r for r in rows if r.get("phase") == "latency"]) + "\n\n"
          + "\n".join(f"- {l}" for l in lines))
    if not args.no_markdown:
        update_markdown(os.path.join(ROOT, "BENCHMARKS.md"), md)
    print(f"\nwrote {out}")

if __name__ == "__main__":
    sys.exit(main())
