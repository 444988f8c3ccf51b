"""Device management benchmarks (issue step 6): an inventory refresh of 10,000 simulated
devices against `custody serve` (wall time from the API call that queues it to the last answer,
and commands answered per second, compared with the ceiling's command round trips measured in the
same run), and the compliance evaluation of 1,000,000 devices (target under 5 s).

Run through `bench/run --inventory`. Writes its section of BENCHMARKS.md between the
`<!-- inventory -->` markers, leaving the rest of the file alone.
"""

import argparse
import json
import os
import statistics
import subprocess
import time

from mdm import SIM, Server, ceiling, check, create_database
from sections import replace_section

COMPLIANCE = os.path.abspath("target/release/examples/compliance_eval")


def refresh(label, url, args):
    """Median wall time and commands/s of one inventory refresh of `args.devices` devices, each
    run paired with a ceiling run just before it."""
    walls, rates, ceilings, ratios = [], [], [], []
    for run in range(args.refresh_runs or args.runs):
        server = Server(url)
        try:
            top = ceiling(min(args.devices, 1000), args.workers, 5, 1)["requests_per_second"]
            out = subprocess.run([SIM, "load", "--url", f"http://127.0.0.1:{server.port}", "--token", server.token,
                                  "--agency", server.agency, "--devices", str(args.devices), "--workers",
                                  str(args.workers), "--iterations", "1", "--seed", str(run + 11), "--share-key",
                                  "--inventory-refresh"], check=True, capture_output=True, text=True)
            report = json.loads(out.stdout)
            check(report, f"{label} inventory")
            answered = sum(report["commands"]["by_status"].values())
            if answered != args.devices * 5 or report["commands"]["first_inventory"] != args.devices * 5:
                raise RuntimeError(f"{label}: {answered} answered of {args.devices * 5}: {report['errors']}")
            wall = report["commands"]["queue_seconds"] + report["run_seconds"]
            # Every answered command is one connect request; the ceiling's round trips are too.
            rate = answered / wall
            walls.append(wall)
            rates.append(rate)
            ceilings.append(top)
            ratios.append(report["requests_per_second"] / top)
        finally:
            server.stop()
        print(f"{label} inventory run {run + 1}: {walls[-1]:.1f} s, {rates[-1]:,.0f} commands/s "
              f"(ceiling {ceilings[-1]:,.0f} requests/s)", flush=True)
    return statistics.median(walls), statistics.median(rates), statistics.median(ceilings), \
        statistics.median(ratios), walls


def compliance(url, count, runs):
    results = []
    for _ in range(runs):
        args = [COMPLIANCE, "--count", str(count)] + (["--database-url", url] if url else [])
        out = subprocess.run(args, check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--refresh-runs", type=int, default=None,
                        help="runs of the inventory refresh (default --runs; each enrolls every device; "
                             "0 keeps the refresh figures already in BENCHMARKS.md)")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--compliance", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("CUSTODY_BENCH_POSTGRES"),
                        help="also measure on this PostgreSQL database URL")
    args = parser.parse_args()
    targets = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    if args.postgres:
        create_database(args.postgres)
    rows, detail, kept = [], [], []
    if args.refresh_runs == 0:
        # Keep the refresh figures of the section already written.
        old = open("BENCHMARKS.md").read() if os.path.exists("BENCHMARKS.md") else ""
        kept = [line for line in old.splitlines()
                if line.startswith("| Inventory refresh") or "inventory refresh runs" in line]
    for label, url in targets if args.refresh_runs != 0 else []:
        wall, rate, top, ratio, walls = refresh(label, url, args)
        rows.append((f"Inventory refresh ({label})", f"{args.devices:,} simulated devices, 5 commands each",
                     f"{wall:.1f} s, {rate:,.0f} commands/s",
                     f"ceiling {top:,.0f} command round trips/s (requests/s ÷ it)", ratio))
        detail.append(f"- {label} inventory refresh runs: " + ", ".join(f"{w:.1f} s" for w in walls))
    for label, url in targets:
        results = compliance(url, args.compliance, args.runs)
        first = statistics.median(r["first_seconds"] for r in results)
        steady = statistics.median(r["steady_seconds"] for r in results)
        changed = statistics.median(r["changed_seconds"] for r in results)
        rows.append((f"Compliance, first evaluation ({label})", f"{args.compliance:,} devices in use",
                     f"{first:.2f} s", "target 5 s", first / 5))
        rows.append((f"Compliance, daily pass, 1% changed ({label})", f"{args.compliance:,} devices in use",
                     f"{changed:.2f} s", "target 5 s", changed / 5))
        rows.append((f"Compliance, daily pass, nothing changed ({label})", f"{args.compliance:,} devices in use",
                     f"{steady:.2f} s", "target 5 s", steady / 5))
        detail.append(f"- {label} compliance runs (first / 1% changed / unchanged): "
                      + ", ".join(f"{r['first_seconds']:.2f} / {r['changed_seconds']:.2f} / "
                                  f"{r['steady_seconds']:.2f} s" for r in results)
                      + f"; {results[0]['non_compliant']:,} non-compliant")
        print(detail[-1], flush=True)

    section = ["<!-- inventory -->", "", "## Device management", "",
               f"Written by `bench/run --inventory` on {time.strftime('%Y-%m-%d')} (release build; "
               + ("the refresh rows kept from the run before" if args.refresh_runs == 0 else
                  f"medians of {args.refresh_runs or args.runs} refresh runs")
               + f"; medians of {args.runs} compliance runs). Ratios: for the refresh, Custody's connect requests/s ÷ the ceiling's command "
               f"round trips measured just before it; for compliance, figure ÷ target (below 1 meets it).", "",
               "| benchmark | dataset | figure | compared with | ratio |", "|---|---|---|---|---|"]
    section += [line for line in kept if line.startswith("|")]
    section += [f"| {n} | {d} | {f} | {c} | {r:.2f} |" for n, d, f, c, r in rows]
    section += ["", "Details:", ""] + [line for line in kept if line.startswith("-")] + detail + [
        "",
        "Inventory refresh: the devices enroll through SCEP and answer their first inventory (untimed); then one "
        "`POST /api/v1/mdm/inventory` per 10,000 devices queues `DeviceInformation`, `SecurityInfo`, "
        "`InstalledApplicationList`, `ProfileList` and `CertificateList` for each, and every device runs one "
        "command session; the wall time runs from the API call to the last answer. Each answer updates the "
        "device's facts (with history), replaces its lists and re-evaluates its compliance, in group commit. "
        "Compliance: `cargo run --release -p custody --example compliance_eval`, devices and enrollments "
        "generated in SQL across 20 agencies; the evaluation is one statement that writes only the devices whose "
        "reasons changed, then the agencies are notified, in one transaction.",
        "", "<!-- /inventory -->"]
    replace_section("inventory", section)


if __name__ == "__main__":
    main()
