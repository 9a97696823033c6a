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
    python -m venv /tmp/nv && /tmp/nv/bin/pip install .     # a normal install, then:
    python bench/startup.py --runs 15 --installed /tmp/nv/bin/python

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


def run_once(cmd: list[str], env: dict, root: Path = ROOT,
             import_root: bool = True) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of ``cmd`` in the checkout ``root`` (kconf
    imported from there, unless ``import_root`` is False: an installed kconf's own script);
    exits if the command fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    if import_root:
        env = {**env, "PYTHONPATH": str(root)}
    done = subprocess.run(cmd, cwd=root, env=env,
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
    parser.add_argument("--installed", type=Path, metavar="PYTHON",
                        help="the Python of a normal (not editable) install of kconf: its "
                             "`kconf` script runs too, interleaved (issue 13's targets are "
                             "for such an install)")
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="kconf-startup-pycache-")
    env.pop("PYTHONPATH", None)
    runs = {name: (cmd, ROOT, True) for name, cmd in COMMANDS.items()}
    if args.baseline is not None:
        runs |= {f"{name} (baseline)": (cmd, args.baseline.resolve(), True)
                 for name, cmd in COMMANDS.items() if name.startswith("kconf")}
    if args.installed is not None:
        # the install's own script: `python -m kconf.cli` in the checkout would import the
        # checkout's kconf (the working directory comes first on sys.path)
        script = str(args.installed.parent / "kconf")
        runs |= {f"{name} (installed)": ([script, *cmd[3:]], ROOT, False)
                 for name, cmd in COMMANDS.items() if name.startswith("kconf")}
    for cmd, root, import_root in runs.values():  # writes the bytecode cache
        run_once(cmd, env, root, import_root)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(args.runs):
        for name, (cmd, root, import_root) in runs.items():
            times[name].append(run_once(cmd, env, root, import_root))
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
