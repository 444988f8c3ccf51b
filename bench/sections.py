"""BENCHMARKS.md is written in sections, one per benchmark script, between `<!-- name -->` and
`<!-- /name -->` markers; each script rewrites its own and leaves the others alone."""

import functools
import os
import subprocess


@functools.cache
def machine():
    """The machine measured on, with a yardstick to compare machines by: OpenSSL's RSA-2048
    signatures per second on one core (what the MDM simulator's devices spend most of their time
    on, and a fair proxy for plain integer speed)."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    described = f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB"
    try:
        out = subprocess.run(["openssl", "speed", "-seconds", "3", "rsa2048"], capture_output=True, text=True,
                             timeout=60).stdout
        signs = next(float(line.split()[-2]) for line in out.splitlines() if line.startswith("rsa 2048"))
        described += f"; OpenSSL RSA-2048 on one core: {signs:,.0f} signatures/s"
    except (OSError, StopIteration, ValueError, IndexError, subprocess.SubprocessError):
        pass
    return described


def replace_section(name, lines):
    """Puts `lines` (which begin and end with the markers) in place of section `name`, or at the
    end of the file when it has none yet. A benchmark's section ends with the machine it was
    measured on (measured now, after the benchmark)."""
    opening, closing = f"<!-- {name} -->", f"<!-- /{name} -->"
    if name != "summary":
        lines = lines[:-1] + [f"Machine: {machine()}.", ""] + lines[-1:]
    text = open("BENCHMARKS.md").read() if os.path.exists("BENCHMARKS.md") else "# Benchmarks\n"
    start, end = text.find(opening), text.find(closing)
    if start >= 0 and end > start:
        text = text[:start] + "\n".join(lines) + text[end + len(closing):]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    with open("BENCHMARKS.md", "w") as f:
        f.write(text)
