"""Custody's benchmarks: cold start, idle memory, and GET /api/v1/people under load.

Each figure is the median of several runs, measured on this machine in the same run as the
target it is compared with. Writes its section of BENCHMARKS.md (between the `<!-- service -->`
markers), leaving the other scripts' sections alone.
"""

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from sections import replace_section

BIN = os.path.abspath("target/release/custody")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(port, process, deadline_s=30):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if process.poll() is not None:
            raise RuntimeError("server exited")
        try:
            if get(port, "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError("not ready in time")


def serve(data_dir, port, database_url=None):
    args = [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir]
    if database_url:
        args += ["--database-url", database_url]
    env = dict(os.environ, RUST_LOG="warn")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def cold_start(runs):
    times, memory = [], []
    for _ in range(runs):
        data_dir = tempfile.mkdtemp(prefix="custody-bench-")
        port = free_port()
        started = time.monotonic()
        process = serve(data_dir, port)
        wait_ready(port, process)
        times.append((time.monotonic() - started) * 1000)
        time.sleep(2)
        memory.append(rss_mb(process.pid))
        stop(process)
        shutil.rmtree(data_dir)
    return times, memory


def parse_wrk(output):
    def ms(value, unit):
        factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        return float(value) * factor

    latency = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        latency[pct] = ms(*m.groups()) if m else float("nan")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        errors += sum(int(x) for x in m.groups())
    return latency, rps, errors


def people_load(people, runs, duration, connections, database_url=None):
    data_dir = tempfile.mkdtemp(prefix="custody-bench-")
    common = ["--data-dir", data_dir] + (["--database-url", database_url] if database_url else [])
    seeded = time.monotonic()
    subprocess.run([BIN, "demo", "--no-serve", "--people", str(people)] + common, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seed_s = time.monotonic() - seeded
    token = subprocess.run([BIN, "admin", "create-token", "--role", "auditor", "--name", "bench"] + common,
                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    process = serve(data_dir, port, database_url)
    try:
        wait_ready(port, process)
        auth = {"Authorization": f"Bearer {token}"}
        status, body = get(port, "/api/v1/people", auth)
        assert status == 200, body
        # Warm up, then measure.
        subprocess.run(["wrk", "-t1", f"-c{connections}", "-d5s", "-H", f"Authorization: Bearer {token}",
                        f"http://127.0.0.1:{port}/api/v1/people"], check=True, capture_output=True)
        results = []
        for _ in range(runs):
            out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H",
                                  f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/api/v1/people"],
                                 check=True, capture_output=True, text=True).stdout
            results.append(parse_wrk(out))
        loaded_rss = rss_mb(process.pid)
        pages = page_times(port, runs, duration)
    finally:
        stop(process)
        shutil.rmtree(data_dir)
    return results, seed_s, loaded_rss, pages


def sign_in(port, email, password):
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"email": email, "password": password})
    conn.request("POST", "/api/v1/session", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    assert response.status == 201, response.status
    cookie = response.getheader("Set-Cookie").split(";")[0]
    conn.close()
    return cookie


def page_times(port, runs, duration, connections=10):
    """p95 of console pages for the demo admin (all agencies) at a few concurrent users."""
    cookie = sign_in(port, "admin@its.state.example", "custody-demo-2026")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "p95.lua")
    out = {}
    for path in ("/", "/people"):
        status, _ = get(port, path, {"Cookie": cookie})
        assert status == 200, (path, status)
        p95s, errors = [], 0
        for _ in range(runs):
            text = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(5, duration // 2)}s", "-s", script,
                                   "-H", f"Cookie: {cookie}", f"http://127.0.0.1:{port}{path}"],
                                  check=True, capture_output=True, text=True).stdout
            p95s.append(float(re.search(r"P95_MS ([\d.]+)", text).group(1)))
            errors += int(re.search(r"ERRORS (\d+)", text).group(1))
        out[path] = (statistics.median(p95s), errors, connections)
    return out


def call(conn, method, path, token, body=None):
    import json

    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    return response.status, (json.loads(payload) if payload else None)


def requests_flow(total, workers, database_url=None):
    """Files `total` new-device requests through the API and takes each through the agency's
    and central IT's approval; returns (seconds, requests/s, API calls/s, service-level page ms)."""
    import json
    import threading

    data_dir = tempfile.mkdtemp(prefix="custody-bench-")
    common = ["--data-dir", data_dir] + (["--database-url", database_url] if database_url else [])
    people = total * 8 + 1000
    subprocess.run([BIN, "demo", "--no-serve", "--people", str(people)] + common, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def token(role, agency=None):
        args = [BIN, "admin", "create-token", "--role", role, "--name", f"bench-{role}"]
        args += ["--agency", agency] if agency else []
        out = subprocess.run(args + common, check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]

    agency = "DCR"
    requester, approver, desk, admin = (token("agency_requester", agency), token("agency_approver", agency),
                                        token("service_desk"), token("admin"))
    port = free_port()
    process = serve(data_dir, port, database_url)
    try:
        wait_ready(port, process)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        _, models = call(conn, "GET", "/api/v1/device-models?device_type=tablet", desk)
        model = next(m["id"] for m in models["items"] if m["standard"] and m["active"])
        ids, cursor = [], None
        while len(ids) < total:
            path = f"/api/v1/people?agency={agency}&limit=500" + (f"&cursor={cursor}" if cursor else "")
            _, page = call(conn, "GET", path, desk)
            ids += [p["id"] for p in page["items"]]
            cursor = page["next"]
            if not cursor:
                break
        assert len(ids) >= total, f"only {len(ids)} people in {agency}"
        errors, lock = [], threading.Lock()

        def work(chunk):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for person in chunk:
                body = {"type": "new_device", "subject_person_id": person,
                        "details": {"device_model_id": model, "line_plan": "none"}}
                status, created = call(c, "POST", "/api/v1/requests", requester, body)
                steps = [(status, created)]
                if status == 201:
                    path = f"/api/v1/requests/{created['id']}/approve"
                    steps.append(call(c, "POST", path, approver, {"override_reason": "bench"}))
                    steps.append(call(c, "POST", path, desk, {}))
                bad = [s for s in steps if s[0] not in (200, 201)]
                if bad or steps[-1][1].get("status") != "approved":
                    with lock:
                        errors.append(json.dumps(bad or steps[-1][1])[:300])
            c.close()

        chunks = [ids[i:total:workers] for i in range(workers)]
        threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - started
        assert not errors, errors[:3]
        cookie = sign_in(port, "admin@its.state.example", "custody-demo-2026")
        page_ms = []
        for _ in range(15):
            t0 = time.monotonic()
            status, _ = get(port, "/service-levels", {"Cookie": cookie})
            page_ms.append((time.monotonic() - t0) * 1000)
            assert status == 200
        api_ms = []
        for _ in range(15):
            t0 = time.monotonic()
            status, _ = call(conn, "GET", "/api/v1/service-levels", admin)
            api_ms.append((time.monotonic() - t0) * 1000)
        conn.close()
    finally:
        stop(process)
        shutil.rmtree(data_dir)
    return seconds, total / seconds, 3 * total / seconds, statistics.median(page_ms), statistics.median(api_ms)


def luhn(digits):
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def p95(samples):
    ordered = sorted(samples)
    return ordered[int(round((len(ordered) - 1) * 0.95))]


def devices_load(total, samples=1000):
    """`custody demo --devices total` on SQLite: generation time and size, then p95 of lookups by
    serial, IMEI and phone number, and of filtered device list pages (API and console)."""
    import random
    import sqlite3

    data_dir = tempfile.mkdtemp(prefix="custody-bench-")
    common = ["--data-dir", data_dir]
    started = time.monotonic()
    subprocess.run([BIN, "demo", "--no-serve", "--people", "20000", "--devices", str(total)] + common, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seed_s = time.monotonic() - started
    db = os.path.join(data_dir, "custody.db")
    rng = random.Random(42)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size_mb = os.path.getsize(db) / 1e6
        phones = [r[0] for r in conn.execute("SELECT phone_number FROM lines ORDER BY random() LIMIT ?", (samples,))]
    token = subprocess.run([BIN, "admin", "create-token", "--role", "euc", "--name", "bench"] + common,
                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    process = serve(data_dir, port)
    results = {}
    try:
        wait_ready(port, process)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ks = [k for k in (rng.randrange(total) for _ in range(samples * 2)) if not 70 <= k % 100 <= 72][:samples]

        def timed(paths, headers):
            out = []
            for path in paths:
                t0 = time.monotonic()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                out.append((time.monotonic() - t0) * 1000)
                assert response.status == 200, (path, response.status, body[:200])
            return out

        auth = {"Authorization": f"Bearer {token}"}
        for label, paths in (
            ("serial", [f"/api/v1/devices?q=DMO{k:08d}" for k in ks]),
            ("IMEI", [f"/api/v1/devices?q=356938{k % 100_000_000:08d}{luhn(f'356938{k % 100_000_000:08d}')}" for k in ks]),
            ("phone number", [f"/api/v1/devices?q=%2B{p[1:]}" for p in phones]),
        ):
            timed(paths[:50], auth)
            results[label] = p95(timed(paths, auth))
        agencies = ["DCR", "DPHS", "OMCS", "DWD", "DCFS", "DRT", "OEP", "DAF"]
        states = ["in_service", "ordered", "in_repair", "decommissioned", "lost_stolen", "enrolled,in_transit"]
        api_paths = [f"/api/v1/devices?agency={rng.choice(agencies)}&state={rng.choice(states)}" for _ in range(300)]
        timed(api_paths[:30], auth)
        results["list (API)"] = p95(timed(api_paths, auth))
        cookie = sign_in(port, "euc@its.state.example", "custody-demo-2026")
        console_paths = [f"/devices?state={rng.choice(states[:-1])}" for _ in range(150)]
        console_paths += [f"/devices?queue={rng.choice(['receive', 'stage', 'enroll', 'deliver'])}" for _ in range(150)]
        timed(console_paths[:30], {"Cookie": cookie})
        results["list (console)"] = p95(timed(console_paths, {"Cookie": cookie}))
        conn.close()
    finally:
        stop(process)
        shutil.rmtree(data_dir)
    return seed_s, size_mb, results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--devices", type=int, default=1_000_000,
                        help="devices generated by the demo for the lookup benchmark (0 skips)")
    parser.add_argument("--requests", type=int, default=10_000,
                        help="requests filed and approved through the API (0 skips)")
    parser.add_argument("--postgres", default=os.environ.get("CUSTODY_BENCH_POSTGRES"),
                        help="also measure on this PostgreSQL database URL (it is migrated and filled)")
    args = parser.parse_args()

    rows = []
    times, memory = cold_start(args.runs)
    start_ms, idle_mb = statistics.median(times), statistics.median(memory)
    rows.append(("Cold start of `custody serve` to `/readyz` (empty SQLite)", "empty database",
                 f"{start_ms:.0f} ms", "target 1000 ms", start_ms / 1000))
    rows.append(("Idle resident memory after start", "empty database", f"{idle_mb:.1f} MB", "target 50 MB",
                 idle_mb / 50))
    print(f"cold start {times} ms; idle RSS {memory} MB")

    targets = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    detail = []
    for label, url in targets:
        results, seed_s, loaded_rss, pages = people_load(args.people, max(3, args.runs // 2 + 1), args.duration,
                                                  args.connections, url)
        p50 = statistics.median(r[0]["50"] for r in results)
        p99 = statistics.median(r[0]["99"] for r in results)
        rps = statistics.median(r[1] for r in results)
        errors = sum(r[2] for r in results)
        rows.append((f"`GET /api/v1/people` p99, {args.connections} connections ({label})",
                     f"{args.people:,} people", f"{p99:.2f} ms", "target 20 ms", p99 / 20))
        for path, (p95, page_errors, conns) in pages.items():
            name = "dashboard `/`" if path == "/" else "people list `/people`"
            rows.append((f"Console {name} p95, {conns} connections ({label})", f"{args.people:,} people",
                         f"{p95:.2f} ms", "target 50 ms", p95 / 50))
            detail.append(f"- {label} console {path}: p95 {p95:.2f} ms at {conns} connections, {page_errors} errors")
        detail.append(f"- {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {rps:,.0f} requests/s, {errors} errors "
                      f"over {len(results)} runs of {args.duration} s; RSS under load {loaded_rss:.1f} MB; "
                      f"seeding {args.people:,} people took {seed_s:.1f} s")
        print(detail[-1])

    for label, url in (targets if args.requests else []):
        seconds, rps, cps, page_ms, api_ms = requests_flow(args.requests, 8, url)
        rows.append((f"File and approve requests through the API, 8 clients ({label})",
                     f"{args.requests:,} new-device requests", f"{rps:,.0f} requests/s",
                     f"{seconds:.1f} s in all, {cps:,.0f} API calls/s", None))
        rows.append((f"Service-level page `/service-levels` ({label})", f"{args.requests:,} approved requests",
                     f"{page_ms:.1f} ms", "target 50 ms (a console page)", page_ms / 50))
        detail.append(f"- {label} requests: {args.requests:,} filed (plan check), approved by the agency (with an "
                      f"override reason) and by central IT in {seconds:.1f} s = {rps:,.0f} requests/s, "
                      f"{cps:,.0f} calls/s; service levels: console page {page_ms:.1f} ms, "
                      f"API {api_ms:.1f} ms (median of 15)")
        print(detail[-1])

    if args.devices:
        seed_s, size_mb, lookups = devices_load(args.devices)
        for label in ("serial", "IMEI", "phone number"):
            rows.append((f"Device lookup by {label} p95 (SQLite, one client)", f"{args.devices:,} devices",
                         f"{lookups[label]:.2f} ms", "target 20 ms", lookups[label] / 20))
        for label in ("list (API)", "list (console)"):
            rows.append((f"Filtered device {label} p95 (SQLite, one client)", f"{args.devices:,} devices",
                         f"{lookups[label]:.2f} ms", "target 100 ms", lookups[label] / 100))
        rows.append(("`custody demo --devices` generation", f"{args.devices:,} devices, 20,000 people",
                     f"{seed_s:.0f} s, database {size_mb:,.0f} MB", "—", None))
        detail.append(f"- devices: generating {args.devices:,} took {seed_s:.1f} s; the SQLite file is {size_mb:,.0f} MB; "
                      + ", ".join(f"{k} p95 {v:.2f} ms" for k, v in lookups.items()))
        print(detail[-1])

    # Its own section of BENCHMARKS.md; the other scripts' sections are left as they are.
    lines = ["<!-- service -->", "", "## Service", "",
             f"Written by `bench/run` on {time.strftime('%Y-%m-%d')} on this project's 2-core machine "
             f"(release build). Figures are medians of several runs; the ratio is figure ÷ target "
             f"(below 1 meets the target).", "",
             "| benchmark | dataset | figure | compared with | ratio |", "|---|---|---|---|---|"]
    for name, dataset, figure, target, ratio in rows:
        shown = "—" if ratio is None else f"{ratio:.2f}"
        lines.append(f"| {name} | {dataset} | {figure} | {target} | {shown} |")
    lines += ["", "Details:", "",
              f"- cold start runs (ms): {', '.join(f'{t:.0f}' for t in times)}; idle RSS runs (MB): "
              f"{', '.join(f'{m:.1f}' for m in memory)}"]
    lines += detail
    lines += ["", f"Load: `wrk -t1 -c{args.connections} -d{args.duration}s --latency` with an auditor's API token, "
              f"first page (50 people) of the list, after a 5 s warm-up; the server shares the 2 cores "
              f"with wrk (one load thread, so that the load generator takes one core at most).", "",
              "<!-- /service -->"]
    replace_section("service", lines)


if __name__ == "__main__":
    main()
