"""Apple MDM benchmarks (issue step 5): simulated devices against `custody serve` on SQLite and
PostgreSQL, compared in the same run with the ceiling (the simulator against an endpoint that
only parses the plist and answers 200); and the push fan-out (one command for 100,000
enrollments, then 100,000 pushes to the local APNs stand-in).

Run through `bench/run --mdm` (or `python3 bench/mdm.py` after a release build of `custody`,
`custody-sim` and the `mdm_fanout` example). Writes its section of BENCHMARKS.md between the
`<!-- mdm -->` markers, leaving the rest of the file alone.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from sections import replace_section

BIN = os.path.abspath("target/release/custody")
SIM = os.path.abspath("target/release/custody-sim")
FANOUT = os.path.abspath("target/release/examples/mdm_fanout")
TOPIC = "com.apple.mgmt.External.5f4e3d2c-1b0a-4958-8776-a5b4c3d2e1f0"
# Every server of one database needs the same sealing key (the CA's key is sealed with it).
BENCH_SECRET = "Y3VzdG9keSBiZW5jaG1hcmsgc2VhbGluZyBrZXkgMzI="
ENV = dict(os.environ, RUST_LOG="warn", CUSTODY_MDM__SECRET_KEY=BENCH_SECRET)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port, method, path, token, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def push_certificate_pem(directory):
    """A self-signed stand-in for Apple's push certificate: the topic in UID."""
    key, cert = os.path.join(directory, "push.key"), os.path.join(directory, "push.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "30", "-subj", f"/UID={TOPIC}/CN=APSP:bench", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return open(cert).read() + open(key).read()


class Server:
    """`custody serve` on a fresh data directory (and database), with an admin token, an
    agency and a push certificate; APNs is pointed at a closed local port (the devices poll)."""

    def __init__(self, database_url=None):
        self.dir = tempfile.mkdtemp(prefix="custody-mdm-bench-")
        self.port = free_port()
        db = ["--data-dir", self.dir] + (["--database-url", database_url] if database_url else [])
        subprocess.run([BIN, "migrate"] + db, check=True, capture_output=True, env=ENV)
        out = subprocess.run([BIN, "admin", "create-token", "--role", "admin", "--name",
                              f"bench-{self.port}"] + db, check=True, capture_output=True, text=True, env=ENV)
        self.token = out.stdout.strip().splitlines()[-1]
        env = dict(ENV, CUSTODY_MDM__APNS_URL="http://127.0.0.1:9")
        self.process = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{self.port}"] + db, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        self.agency = "MDMB"
        try:
            api(self.port, "POST", "/api/v1/agencies", self.token, {"code": self.agency, "name": "Bench agency"})
        except urllib.error.HTTPError as error:
            if error.code != 409:  # a PostgreSQL database kept from an earlier run has it already
                raise
        api(self.port, "PUT", "/api/v1/mdm/push-certificate", self.token, {"pem": push_certificate_pem(self.dir)})

    def load(self, devices, workers, iterations, seed, commands_per_device=0):
        out = subprocess.run([SIM, "load", "--url", f"http://127.0.0.1:{self.port}", "--token", self.token,
                              "--agency", self.agency, "--devices", str(devices), "--workers", str(workers),
                              "--iterations", str(iterations), "--seed", str(seed), "--share-key",
                              "--commands-per-device", str(commands_per_device)],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def ceiling(devices, workers, iterations, command_every):
    out = subprocess.run([SIM, "ceiling-load", "--devices", str(devices), "--workers", str(workers),
                          "--iterations", str(iterations), "--command-every", str(command_every)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def create_database(url):
    """The PostgreSQL database of `url`, created when missing (a run after another script may find
    it dropped)."""
    base, name = url.rsplit("/", 1)
    found = subprocess.run(["psql", base + "/postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                           check=True, capture_output=True, text=True).stdout.strip()
    if not found:
        subprocess.run(["psql", base + "/postgres", "-q", "-c", f"CREATE DATABASE {name}"], check=True)


def check(report, what):
    if report["session_failures"] or report["enroll"]["failed"]:
        raise RuntimeError(f"{what}: failures {report['errors']}")


def measure(label, url, args):
    """Median idle connects/s and command round trips/s on one backend, each run paired with a
    ceiling run just before it."""
    idle, idle_ceiling, trips, trips_ceiling = [], [], [], []
    crowd = []  # (Custody, ceiling) with --crowd workers
    for run in range(args.runs):
        server = Server(url)
        try:
            # Devices enroll (SCEP, Authenticate, TokenUpdate), then poll Idle with nothing queued.
            idle_ceiling.append(ceiling(args.devices, args.workers, args.iterations, 0)["idle"]["rate_per_second"])
            seed = int(time.time() * 1000) % 1_000_000_000
            report = server.load(args.devices, args.workers, args.iterations, seed=seed)
            check(report, f"{label} idle")
            idle.append(report["idle"]["rate_per_second"])
            # Command round trips: every session carries commands; the ceiling answers each Idle
            # with a command, Custody has `iterations` commands queued per device. Both send as
            # many Idles as results; the figure is all connect requests per second.
            trips_ceiling.append(ceiling(args.devices, args.workers, args.iterations, 1)["requests_per_second"])
            report = server.load(args.devices, args.workers, args.iterations, seed=seed + 1,
                                 commands_per_device=args.iterations)
            check(report, f"{label} commands")
            answered = sum(report["commands"]["by_status"].values())
            if answered != args.devices * args.iterations:
                raise RuntimeError(f"{label}: {answered} commands answered, "
                                   f"{args.devices * args.iterations} queued")
            trips.append(report["requests_per_second"])
            # The same with more devices talking at once (reported, not the target's shape): the
            # ceiling is bound by the client's signing either way, Custody's reports share commits.
            crowd_ceiling = ceiling(args.devices, args.crowd, args.iterations, 1)["requests_per_second"]
            report = server.load(args.devices, args.crowd, args.iterations, seed=seed + 2,
                                 commands_per_device=args.iterations)
            check(report, f"{label} commands, {args.crowd} workers")
            crowd.append((report["requests_per_second"], crowd_ceiling))
        finally:
            server.stop()
        print(f"{label} run {run + 1}: idle {idle[-1]:,.0f}/s (ceiling {idle_ceiling[-1]:,.0f}/s), "
              f"with commands {trips[-1]:,.0f}/s (ceiling {trips_ceiling[-1]:,.0f}/s)", flush=True)
    # Each run is compared with the ceiling measured just before it: the ratio is the median of
    # those paired ratios, which a noisy neighbour on the machine skews less than a ratio of medians.
    idle_ratio = statistics.median(a / b for a, b in zip(idle, idle_ceiling))
    trips_ratio = statistics.median(a / b for a, b in zip(trips, trips_ceiling))
    return ([statistics.median(v) for v in (idle, idle_ceiling, trips, trips_ceiling)], (idle, trips),
            (idle_ratio, trips_ratio), (idle_ceiling, trips_ceiling), crowd)


def fanout(count, url, runs):
    results = []
    for _ in range(runs):
        args = [FANOUT, "--count", str(count)] + (["--database-url", url] if url else [])
        out = subprocess.run(args, check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if results[-1]["pushes_delivered"] != count:
            raise RuntimeError(f"fan-out delivered {results[-1]['pushes_delivered']} of {count}")
    return (statistics.median(r["enqueue_seconds"] for r in results),
            statistics.median(r["pushes_per_second"] for r in results), results)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--crowd", type=int, default=32,
                        help="workers of the extra command round-trip runs (in the details only)")
    parser.add_argument("--fanout", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("CUSTODY_BENCH_POSTGRES"),
                        help="also measure on this PostgreSQL database URL (it is migrated and filled)")
    args = parser.parse_args()

    rows, detail = [], []
    targets = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    if args.postgres:
        create_database(args.postgres)
    shape = f"{args.devices} devices, {args.workers} workers, {args.iterations} sessions each"
    for label, url in targets:
        (idle, idle_c, trips, trips_c), (idle_runs, trip_runs), (idle_r, trips_r), (idle_cs, trip_cs), crowd = \
            measure(label, url, args)
        rows.append((f"MDM idle connects/s ({label})", shape, f"{idle:,.0f}/s",
                     f"ceiling {idle_c:,.0f}/s; target ≥ 50% of it", idle_r))
        rows.append((f"MDM connects/s with command round trips ({label})", shape + ", one command per session",
                     f"{trips:,.0f}/s", f"ceiling {trips_c:,.0f}/s; target ≥ 50% of it", trips_r))
        pairs = lambda runs, ceilings: ", ".join(f"{a:,.0f} ({a / b:.2f})" for a, b in zip(runs, ceilings))
        detail.append(f"- {label} idle runs (ratio to their ceiling): {pairs(idle_runs, idle_cs)}/s; "
                      f"with commands: {pairs(trip_runs, trip_cs)}/s; with commands and {args.crowd} workers: "
                      f"{pairs([c for c, _ in crowd], [b for _, b in crowd])}/s (ceilings "
                      + ", ".join(f"{b:,.0f}" for _, b in crowd) + "/s)")
    for label, url in targets:
        enqueue_s, rate, results = fanout(args.fanout, url, args.runs)
        rows.append((f"Queue one command for every enrollment ({label})", f"{args.fanout:,} enrollments",
                     f"{enqueue_s:.2f} s", "target 2 s", enqueue_s / 2))
        rows.append((f"Pushes delivered to the APNs stand-in ({label})", f"{args.fanout:,} pushes",
                     f"{rate:,.0f}/s", "target 10,000/s", 10_000 / rate))
        detail.append(f"- {label} fan-out runs: enqueue "
                      + ", ".join(f"{r['enqueue_seconds']:.2f}" for r in results) + " s; pushes "
                      + ", ".join(f"{r['pushes_per_second']:,.0f}" for r in results) + "/s")
        print(detail[-1], flush=True)

    section = ["<!-- mdm -->", "", "## Apple MDM", "",
               f"Written by `bench/run --mdm` on {time.strftime('%Y-%m-%d')} (release build, medians of "
               f"{args.runs} runs). For the connect figures the ratio is Custody ÷ the ceiling measured just before "
               f"it, the median of the runs' ratios (0.50 or more meets the target); for the fan-out, figure ÷ "
               f"target (below 1 meets it).", "",
               "| benchmark | dataset | figure | compared with | ratio |", "|---|---|---|---|---|"]
    section += [f"| {n} | {d} | {f} | {c} | {r:.2f} |" for n, d, f, c, r in rows]
    section += ["", "Details:", ""] + detail + [
        "",
        "The simulator (`custody-sim load`) enrolls each device through the enrollment profile and SCEP, then "
        "runs command sessions signed with `Mdm-Signature` (RSA 2048, one key shared by the devices to spare "
        "key generation; each device has its own certificate). The ceiling (`custody-sim ceiling-load`) is the "
        "same client against an in-process endpoint that parses the plist and answers 200 without checking "
        "anything; both share the machine's 2 cores with the client, whose signing bounds the ceiling. "
        "Custody writes a report's changes through group commit (`store::group`): the reports waiting at one "
        "moment share one transaction and one audit-chain update. "
        "Fan-out: `cargo run --release -p custody --example mdm_fanout`, enrollments written in bulk, one "
        "`DeviceInformation` queued for all of them by UDID through the application layer, then Custody's push "
        "sender delivers to the local APNs stand-in over TLS/HTTP/2.",
        "", "<!-- /mdm -->"]
    replace_section("mdm", section)


if __name__ == "__main__":
    main()
