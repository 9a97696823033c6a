"""Start-up time of the CLI: ``kconf --help`` and ``kconf validate configs/vgg.yaml``, next to
the floor every kconf command pays (Python with numpy, pydantic, typer, rich and yaml
imported) and a bare ``python -c pass``.

Each command runs ``--runs`` times, the commands interleaved round by round (the machine is
noisy); the table gives the minimum and the median of each command's CPU time (user + system
of the child process, less sensitive to other processes than wall time) and its wall time.
Bytecode is written to a cache of its own first, as a normal install has it.

    python bench/startup.py --runs 15
    python bench/startup.py --runs 15 --out bench/startup.md
    python bench/startup.py --runs 15 --baseline ../main    # kconf's rows of another checkout
                                                            # too, interleaved with these

Issue 13's targets: ``kconf --help`` under 0.2 s and ``validate configs/vgg.yaml`` under
0.5 s in a normal install (not an editable one: its import hook costs ~15 ms more).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "floor (numpy, pydantic, typer, rich, yaml)": [
        sys.executable, "-c", "import numpy, pydantic, typer, rich.console, yaml"],
    "kconf --help": [sys.executable, "-m", "kconf.cli", "--help"],
    "kconf validate configs/vgg.yaml": [sys.executable, "-m", "kconf.cli", "validate",
                                        "configs/vgg.yaml"],
}


def run_once(cmd: list[str], env: dict, root: Path = ROOT) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of ``cmd`` in the checkout ``root`` (imported
    from there); exits if the command fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, env={**env, "PYTHONPATH": str(root)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-500:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout of kconf whose kconf commands run too, "
                             "interleaved with this one's (an A/B on the same load)")
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="kconf-startup-pycache-")
    runs = {name: (cmd, ROOT) for name, cmd in COMMANDS.items()}
    if args.baseline is not None:
        runs |= {f"{name} (baseline)": (cmd, args.baseline.resolve())
                 for name, cmd in COMMANDS.items() if name.startswith("kconf")}
    for cmd, root in runs.values():  # writes the bytecode cache
        run_once(cmd, env, root)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(args.runs):
        for name, (cmd, root) in runs.items():
            times[name].append(run_once(cmd, env, root))
    load = os.getloadavg()[0]
    lines = [f"| command | CPU min s | CPU median s | wall min s | wall median s |",
             "|---|---|---|---|---|"]
    for name, samples in times.items():
        cpu = [c for c, _ in samples]
        wall = [w for _, w in samples]
        lines.append(f"| {name} | {min(cpu):.3f} | {statistics.median(cpu):.3f} | "
                     f"{min(wall):.3f} | {statistics.median(wall):.3f} |")
    lines.append("")
    baseline = f"; baseline: {args.baseline}" if args.baseline is not None else ""
    lines.append(f"({args.runs} interleaved runs each, {os.cpu_count()} cores, "
                 f"load average {load:.1f} at the end; Python {sys.version.split()[0]}"
                 f"{baseline})")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
