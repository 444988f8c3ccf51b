"""Billing benchmark (issue step 7): `custody demo --devices 1000000` over 120 agencies (24 closed
months of history), then closing the next month timed beside a plain SQL count of its billable
device-months on the same database, in the same run. Target: the close within 3x the count and
under 60 s.

Run through `bench/run --billing`. Writes its section of BENCHMARKS.md between the
`<!-- billing -->` markers, leaving the rest of the file alone. `--seeded` reuses the databases a
previous run seeded (target/bench-billing/ and the PostgreSQL database given).
"""

import argparse
import json
import os
import statistics
import subprocess
import time

from sections import replace_section

CUSTODY = os.path.abspath("target/release/custody")
CLOSE = os.path.abspath("target/release/examples/billing_close")
WORK = os.path.abspath("target/bench-billing")


def seed(url, data_dir, args):
    started = time.monotonic()
    subprocess.run([CUSTODY, "demo", "--no-serve", "--devices", str(args.devices), "--agencies", str(args.agencies),
                    "--people", str(args.people), "--data-dir", data_dir, "--database-url", url], check=True)
    return time.monotonic() - started


def reset_postgres(url):
    base, name = url.rsplit("/", 1)
    admin = base + "/postgres"
    subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}"],
                   check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=120)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--seeded", action="store_true", help="reuse the databases of the run before")
    parser.add_argument("--postgres", default=os.environ.get("CUSTODY_BENCH_POSTGRES"),
                        help="also measure on this PostgreSQL database URL (dropped and created again)")
    args = parser.parse_args()
    os.makedirs(WORK, exist_ok=True)
    sqlite_url = f"sqlite://{WORK}/custody.db"
    targets = [("SQLite", sqlite_url)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    rows, detail = [], []
    if args.seeded:
        # Keep the seeding times of the run that seeded.
        old = open("BENCHMARKS.md").read() if os.path.exists("BENCHMARKS.md") else ""
        detail = [line for line in old.splitlines() if line.startswith("- ") and "`custody demo` seeded in" in line]
    for label, url in targets:
        if not args.seeded:
            if url.startswith("sqlite"):
                for suffix in ("", "-wal", "-shm"):
                    path = f"{WORK}/custody.db{suffix}"
                    if os.path.exists(path):
                        os.remove(path)
            else:
                reset_postgres(url)
            seconds = seed(url, f"{WORK}/{label.lower()}-data", args)
            detail.append(f"- {label}: `custody demo` seeded in {seconds / 60:.1f} min")
            print(detail[-1], flush=True)
        out = subprocess.run([CLOSE, "--database-url", url, "--runs", str(args.runs)], check=True,
                             capture_output=True, text=True)
        report = json.loads(out.stdout.strip().splitlines()[-1])
        close, count = report["close_median"], report["count_median"]
        ratio = close / count
        rows.append((f"Billing close, one month ({label})",
                     f"{report['intervals']:,} billing intervals, {report['agencies']} agencies, "
                     f"{report['device_months']:,} device-months",
                     f"{close:.2f} s", f"plain count of its device-months {count:.2f} s; target ≤ 3× and < 60 s", ratio))
        detail.append(f"- {label} runs ({report['period']}, close / count): "
                      + ", ".join(f"{c:.2f} / {n:.2f} s" for c, n in zip(report["close_seconds"],
                                                                         report["count_seconds"]))
                      + f"; {report['invoices']} invoices a close")
        print(detail[-1], flush=True)

    section = ["<!-- billing -->", "", "## Billing", "",
               f"Written by `bench/run --billing` on {time.strftime('%Y-%m-%d')} (release build; medians of "
               f"{args.runs} runs). Dataset: `custody demo --devices {args.devices:,} --agencies {args.agencies} "
               f"--people {args.people:,}`, which also closes 24 months of history. Ratio: the close's time ÷ the "
               "plain count's, measured one after the other in each run (target 3 or less).", "",
               "| benchmark | dataset | figure | compared with | ratio |", "|---|---|---|---|---|"]
    section += [f"| {n} | {d} | {f} | {c} | {r:.2f} |" for n, d, f, c, r in rows]
    section += ["", "Details:", ""] + detail + [
        "",
        "`cargo run --release -p custody --example billing_close`: each run times `SELECT COUNT(*)` of the "
        "intervals billable in the month, then the real close (every agency's chargeback and direct-bill "
        "invoices with their lines, baselines' excess, pass-through charges and pending adjustments, in one "
        "committed transaction), checks the close charged exactly the counted device-months, and reopens the "
        "month for the next run.",
        "", "<!-- /billing -->"]
    replace_section("billing", section)


if __name__ == "__main__":
    main()
