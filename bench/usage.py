"""Carrier usage benchmark (issue step 8): importing 1,000,000 lines x 6 months of usage (6,000,000
rows) with the function `custody usage import` runs, in rows per second (target at least 200,000
rows/s on SQLite), importing the same file again (which changes nothing), and issuing every
agency's biannual report on that data (target under 30 s).

Run through `bench/run --usage`. Writes its section of BENCHMARKS.md between the `<!-- usage -->`
markers, leaving the rest of the file alone.
"""

import argparse
import json
import os
import statistics
import subprocess
import time

from sections import replace_section

IMPORT = os.path.abspath("target/release/examples/usage_import")


def reset_postgres(url):
    base, name = url.rsplit("/", 1)
    subprocess.run(["psql", base + "/postgres", "-q", "-c", f"DROP DATABASE IF EXISTS {name}", "-c",
                    f"CREATE DATABASE {name}"], check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres-runs", type=int, help="runs on PostgreSQL (default: --runs)")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--postgres", default=os.environ.get("CUSTODY_BENCH_POSTGRES"),
                        help="also measure on this PostgreSQL database URL (dropped and created again)")
    args = parser.parse_args()
    targets = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    rows, detail = [], []
    for label, url in targets:
        results = []
        for _ in range(args.runs if not url or args.postgres_runs is None else args.postgres_runs):
            command = [IMPORT, "--lines", str(args.lines), "--months", str(args.months)]
            if url:
                reset_postgres(url)
                command += ["--database-url", url]
            out = subprocess.run(command, check=True, capture_output=True, text=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{label}: {results[-1]}", flush=True)
        rate = statistics.median(r["rows_per_second"] for r in results)
        seconds = statistics.median(r["import_seconds"] for r in results)
        again = statistics.median(r["reimport_seconds"] for r in results)
        dataset = f"{args.lines:,} lines x {args.months} months = {results[0]['rows']:,} rows " \
                  f"({results[0]['file_bytes'] / 1e6:.0f} MB CSV)"
        target = 200_000
        rows.append((f"Usage import ({label})", dataset, f"{rate:,.0f} rows/s ({seconds:.1f} s)",
                     f"target {target:,} rows/s" + ("" if label == "SQLite" else " (set for SQLite)"), target / rate))
        rows.append((f"Usage import, same file again ({label})", dataset, f"{again:.1f} s, nothing written",
                     f"the first import's {seconds:.1f} s", again / seconds))
        reports = statistics.median(r["reports_seconds"] for r in results)
        rows.append((f"Biannual reports, every agency ({label})",
                     f"{results[0]['reports']} agencies over that usage ({results[0]['recommendations']:,} "
                     "recommendations)", f"{reports:.1f} s", "target 30 s", reports / 30))
        detail.append(f"- {label} runs (import / again / reports): "
                      + ", ".join(f"{r['import_seconds']:.1f} / {r['reimport_seconds']:.1f} / "
                                  f"{r['reports_seconds']:.1f} s" for r in results))

    section = ["<!-- usage -->", "", "## Carrier usage", "",
               f"Written by `bench/run --usage` on {time.strftime('%Y-%m-%d')} (release build; medians of "
               f"{args.runs} runs on SQLite"
               + (f", {args.postgres_runs or args.runs} on PostgreSQL" if args.postgres else "") + "). Ratios: target ÷ figure for the import and figure ÷ target for the reports "
               "(below 1 meets them); for the second import, its time ÷ the first's.", "",
               "| benchmark | dataset | figure | compared with | ratio |", "|---|---|---|---|---|"]
    section += [f"| {n} | {d} | {f} | {c} | {r:.2f} |" for n, d, f, c, r in rows]
    section += ["", "Details:", ""] + detail + [
        "",
        "`cargo run --release -p custody --example usage_import`: lines and their devices generated in SQL across "
        "120 agencies, a CSV written with a twentieth of the lines silent and a tenth without data, then "
        "`custody_app::usage::import` (what `custody usage import` runs): one pass, a blocking thread parsing and "
        "checking every row (eight bytes a row kept for the duplicate check) while the database writes the batch "
        "before in one transaction, 5,000 rows a statement handed over as one JSON array, each month a row of "
        "`usage_months` keyed by one integer (month, then the number's digits). The reports: two agencies at a "
        "time, each read from one snapshot (a read transaction) a page of lines at a time, its rows, people and "
        "recommendations written in one transaction. The example runs with the `custody` binary's allocator "
        "(mimalloc); until 2026-11-26 the examples ran with the system allocator, which cost the reports a fifth "
        "of their time.",
        "", "<!-- /usage -->"]
    replace_section("usage", section)


if __name__ == "__main__":
    main()
