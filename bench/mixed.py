"""Sustained mixed load (issue step 9): simulated devices running command sessions beside API
reads and writes and console pages (`custody-sim mixed`), against `custody serve` over the demo
state on SQLite: first the mix's capacity (as fast as the workers go), then a long run at a
fraction of it (default 80% for 10 minutes) at a fixed rate, with the server's memory sampled
every 5 s. Writes its section of BENCHMARKS.md between the `<!-- mixed -->` markers and the
chart `bench/mixed-load.svg`.

Run through `bench/run --mixed` (or `python3 bench/mixed.py` after a release build of `custody`
and `custody-sim`).
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time

from mdm import BENCH_SECRET, BIN, SIM, api, free_port, push_certificate_pem
from sections import replace_section

ADMIN = ("admin@its.state.example", "custody-demo-2026")
CHART = "bench/mixed-load.svg"


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def mixed(port, token, agency, args, rate=None, seconds=30, seed=1):
    command = [SIM, "mixed", "--url", f"http://127.0.0.1:{port}", "--token", token, "--agency", agency,
               "--email", ADMIN[0], "--devices", str(args.devices), "--seed", str(seed),
               "--workers", str(args.workers), "--seconds", str(seconds), "--window-seconds", str(args.window)]
    if rate:
        command += ["--rate", f"{rate:.1f}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True,
                         env=dict(os.environ, CUSTODY_SIM_PASSWORD=ADMIN[1]))
    return json.loads(out.stdout)


def chart(windows, memory, path):
    """Two panels, one above the other: p50/p95/p99 latency of each window, and the server's RSS."""
    width, height, left, right, top, mid, bottom = 760, 420, 60, 20, 20, 210, 390
    end = max([w["start_s"] for w in windows] + [t for t, _ in memory] + [1])
    x = lambda t: left + (width - left - right) * t / end
    top_ms = max(max(w["p99_ms"] for w in windows), 1.0) * 1.1
    y_ms = lambda ms: top + (mid - 30 - top) * (1 - ms / top_ms)
    top_mb = max(m for _, m in memory) * 1.2
    y_mb = lambda mb: mid + 20 + (bottom - mid - 20) * (1 - mb / top_mb)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>']
    for label, key, colour in (("p50", "p50_ms", "#2b8a3e"), ("p95", "p95_ms", "#e8590c"),
                               ("p99", "p99_ms", "#c92a2a")):
        points = " ".join(f"{x(w['start_s']):.1f},{y_ms(w[key]):.1f}" for w in windows)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
    points = " ".join(f"{x(t):.1f},{y_mb(m):.1f}" for t, m in memory)
    parts.append(f'<polyline fill="none" stroke="#1c7ed6" stroke-width="1.5" points="{points}"/>')
    for panel_top, panel_bottom in ((top, mid - 30), (mid + 20, bottom)):
        parts.append(f'<line x1="{left}" y1="{panel_bottom}" x2="{width - right}" y2="{panel_bottom}" stroke="#888"/>')
        parts.append(f'<line x1="{left}" y1="{panel_top}" x2="{left}" y2="{panel_bottom}" stroke="#888"/>')
    parts.append(f'<text x="{left + 5}" y="{top + 10}">latency (ms) of each {windows[1]["start_s"] - windows[0]["start_s"] if len(windows) > 1 else 10} s '
                 'window: <tspan fill="#2b8a3e">p50</tspan>, <tspan fill="#e8590c">p95</tspan>, '
                 '<tspan fill="#c92a2a">p99</tspan></text>')
    parts.append(f'<text x="{left - 5}" y="{y_ms(top_ms / 1.1) + 4:.1f}" text-anchor="end">{top_ms / 1.1:.0f}</text>')
    parts.append(f'<text x="{left - 5}" y="{mid - 30}" text-anchor="end">0</text>')
    parts.append(f'<text x="{left + 5}" y="{mid + 30}" fill="#1c7ed6">server resident memory (MB)</text>')
    parts.append(f'<text x="{left - 5}" y="{y_mb(top_mb / 1.2) + 4:.1f}" text-anchor="end">{top_mb / 1.2:.0f}</text>')
    parts.append(f'<text x="{left - 5}" y="{bottom}" text-anchor="end">0</text>')
    for t in range(0, int(end) + 1, 60):
        parts.append(f'<text x="{x(t):.1f}" y="{bottom + 14}" text-anchor="middle">{t // 60} min</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--probe-seconds", type=int, default=30)
    parser.add_argument("--probes", type=int, default=3, help="capacity probes (the median is taken)")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--fraction", type=float, default=0.8)
    parser.add_argument("--window", type=int, default=10)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="custody-mixed-")
    common = ["--data-dir", data_dir]
    env = dict(os.environ, RUST_LOG="warn", CUSTODY_MDM__SECRET_KEY=BENCH_SECRET)
    subprocess.run([BIN, "demo", "--no-serve", "--people", str(args.people)] + common, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    token = subprocess.run([BIN, "admin", "create-token", "--role", "admin", "--name", "mixed"] + common,
                           check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"] + common,
                              env=dict(env, CUSTODY_MDM__APNS_URL="http://127.0.0.1:9"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    memory, sampling = [], threading.Event()
    try:
        for _ in range(300):
            try:
                import urllib.request

                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        agency = "MIXD"
        api(port, "POST", "/api/v1/agencies", token, {"code": agency, "name": "Mixed load agency"})
        api(port, "PUT", "/api/v1/mdm/push-certificate", token, {"pem": push_certificate_pem(data_dir)})

        probes = [mixed(port, token, agency, args, seconds=args.probe_seconds, seed=100 + i)
                  for i in range(args.probes)]
        for p in probes:
            print(f"capacity probe: {p['rate_per_second']:,.0f} operations/s, {p['errors']} errors", flush=True)
        capacity = statistics.median(p["rate_per_second"] for p in probes)
        rate = capacity * args.fraction

        started = time.monotonic()

        def sample():
            while not sampling.is_set():
                memory.append((time.monotonic() - started, rss_mb(server.pid)))
                sampling.wait(5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        run = mixed(port, token, agency, args, rate=rate, seconds=args.seconds, seed=7)
        sampling.set()
        sampler.join()
    finally:
        sampling.set()
        server.terminate()
        server.wait(timeout=30)
    print(f"sustained: {run['rate_per_second']:,.0f} operations/s, {run['errors']} errors, "
          f"p95 {run['overall']['p95_ms']:.1f} ms", flush=True)

    windows = run["windows"]
    chart(windows, memory, CHART)
    minute = max(1, 60 // args.window)
    first, last = windows[:minute], windows[-minute:]
    p95_of = lambda ws: statistics.median(w["p95_ms"] for w in ws)
    # Steady: the p95 of the second half's windows against the first half's (medians, so one
    # slow window does not decide it); latency that climbs as the run goes on shows here.
    half = len(windows) // 2
    early, late = windows[:half] or windows, windows[half:]
    # Memory after the first minute (warm) against the end: growth, if any, shows here.
    warm = [m for t, m in memory if t >= 60] or [m for _, m in memory]
    rows = [
        ("Mixed load capacity (SQLite)", f"{args.devices} devices, {args.people:,} people, {args.workers} at once",
         f"{capacity:,.0f} operations/s", f"median of {args.probes} probes of {args.probe_seconds} s", None),
        (f"Sustained mixed load, {args.seconds // 60} min (SQLite)", f"{args.fraction:.0%} of capacity = {rate:,.0f}/s",
         f"{run['operations']:,} operations, {run['errors']} errors", "target 0 errors (the ratio is the errors)",
         float(run["errors"])),
        ("Sustained mixed load p95 latency, second half ÷ first half", f"median of the {args.window} s windows",
         f"{p95_of(early):.1f} → {p95_of(late):.1f} ms (first minute {p95_of(first):.1f}, last {p95_of(last):.1f})",
         "steady: target ≤ 1.5× the first half", p95_of(late) / max(p95_of(early), 0.001) / 1.5),
        ("Server resident memory, end ÷ first warm minute", "sampled every 5 s",
         f"{warm[0]:.1f} → {warm[-1]:.1f} MB (max {max(m for _, m in memory):.1f})",
         "not growing: target ≤ 1.2× the first warm minute", warm[-1] / warm[0] / 1.2),
    ]
    section = ["<!-- mixed -->", "", "## Sustained mixed load", "",
               f"Written by `bench/run --mixed` on {time.strftime('%Y-%m-%d')} (release build, SQLite, the demo "
               f"state with {args.people:,} people). `custody-sim mixed` runs, out of every 20 operations, 8 device "
               "command sessions (signed Idle, then whatever is queued), 5 API reads of a page of people and 2 of "
               "enrollments, 2 commands queued and 1 person created through the API, and 2 console pages (the "
               "people list, signed in). The capacity is the mix as fast as the workers go; the sustained run "
               "issues each operation at its due time (open loop) and counts its latency from then. Ratios: "
               "figure ÷ target (below 1 meets it).", "",
               "| benchmark | dataset | figure | compared with | ratio |", "|---|---|---|---|---|"]
    for name, dataset, figure, compared, ratio in rows:
        shown = "—" if ratio is None else f"{ratio:.2f}"
        section.append(f"| {name} | {dataset} | {figure} | {compared} | {shown} |")
    section += ["", f"![latency and memory over the sustained run]({os.path.basename(CHART)})", "",
                "Each minute of the sustained run:", "",
                "| minute | operations/s | errors | p50 ms | p95 ms | p99 ms | server RSS MB |", "|---|---|---|---|---|---|---|"]
    for m in range(0, len(windows), minute):
        ws = windows[m:m + minute]
        t0 = ws[0]["start_s"]
        rss = [mb for t, mb in memory if t0 <= t < t0 + 60]
        section.append(f"| {t0 // 60 + 1} | {sum(w['operations'] for w in ws) / (len(ws) * args.window):,.0f} | "
                       f"{sum(w['errors'] for w in ws)} | {statistics.median(w['p50_ms'] for w in ws):.1f} | "
                       f"{statistics.median(w['p95_ms'] for w in ws):.1f} | "
                       f"{statistics.median(w['p99_ms'] for w in ws):.1f} | "
                       f"{(statistics.median(rss) if rss else 0):.1f} |")
    section += ["", "By kind over the sustained run:", "",
                "| operation | count | errors | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|"]
    for kind, l in run["by_kind"].items():
        section.append(f"| {kind} | {l['count']:,} | {run['errors_by_kind'].get(kind, 0)} | {l['p50_ms']:.1f} | "
                       f"{l['p95_ms']:.1f} | {l['p99_ms']:.1f} |")
    if run["error_samples"]:
        section += ["", "Errors seen: " + "; ".join(f"`{e}`" for e in run["error_samples"])]
    section += ["", f"Operations that started late because all {args.workers} slots were busy: {run['late_starts']:,}.",
                "", "<!-- /mixed -->"]
    replace_section("mixed", section)
    print(json.dumps({"capacity": capacity, "rate": rate, "operations": run["operations"], "errors": run["errors"],
                      "p95_first_half": p95_of(early), "p95_second_half": p95_of(late), "rss_first": warm[0],
                      "rss_last": warm[-1]}))


if __name__ == "__main__":
    main()
