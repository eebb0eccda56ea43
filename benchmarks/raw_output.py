"""Each benchmark run's raw output, kept as one JSON file.

A run writes ``benchmarks/results/<bench>/<date-time>_<machine>.json`` (the folder can be moved
with the ``CROLOSS_BENCH_RESULTS`` environment variable, e.g. for tests): the machine, the date,
the exact command, the git commit, and every figure the script printed, structured. A file is
never overwritten: a second run in the same second gets a numbered name, so the text can quote a
run's figures and name the file that holds them.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

from machine import device_name

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
#: Environment variables that change what a benchmark measures, recorded with its command.
ENV_PREFIXES = ("MALLOC_", "OMP_", "MKL_", "TORCHINDUCTOR_", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED")


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return None


def machine(device=None) -> dict:
    """The machine a run measured: CPU model, cores, memory, and the GPU's name when one is used."""
    import torch

    info = {"cpu": device_name(torch.device("cpu")), "cores": os.cpu_count(), "memory_gib": memory_gib(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}
    if device is not None and torch.device(device).type == "cuda":
        info["gpu"] = device_name(torch.device(device))
    return info


def git_state() -> dict:
    """The commit the run measured and whether the working tree had changes beyond it."""
    def git(*args):
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def start_environment() -> dict:
    """The environment the process was started with (libraries such as torch set variables of
    their own in ``os.environ`` at import, which the command did not)."""
    try:
        with open("/proc/self/environ", "rb") as fh:
            pairs = [item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item]
        return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}
    except OSError:
        return dict(os.environ)


def command(argv=None) -> str:
    """The command as it can be typed again: the relevant environment, the interpreter, the script."""
    env = [f"{k}={v}" for k, v in sorted(start_environment().items()) if k.startswith(ENV_PREFIXES)]
    args = list(sys.argv) if argv is None else [sys.argv[0], *argv]
    return " ".join(env + ["python", shlex.join(args)])


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def output_path(bench: str, info: dict, now: datetime.datetime) -> Path:
    folder = Path(os.environ.get("CROLOSS_BENCH_RESULTS") or RESULTS) / bench
    folder.mkdir(parents=True, exist_ok=True)
    name = info.get("gpu") or f"{info['cpu']}-{info['cores']}core"
    return folder / f"{now.strftime('%Y-%m-%dT%H-%M-%S')}_{slug(name)}.json"


def write(bench: str, figures: dict, *, argv=None, device=None, started: datetime.datetime | None = None) -> Path:
    """Store one run's figures with its machine, date, command and commit; returns the file."""
    now = started or datetime.datetime.now()
    info = machine(device)
    record = {"bench": bench, "date": now.isoformat(timespec="seconds"),
              "finished": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": command(argv), "cwd": os.getcwd(), "machine": info, "git": git_state(),
              "load_average_end": [round(v, 2) for v in os.getloadavg()], "figures": figures}
    path = output_path(bench, info, now)
    stem, n = path.stem, 1
    while True:
        try:
            with open(path, "x") as fh:  # "x": another run's file is never replaced
                json.dump(record, fh, indent=1)
                fh.write("\n")
            break
        except FileExistsError:
            n += 1
            path = path.with_name(f"{stem}_{n}.json")
    print(f"# raw output: {display(path)}")
    return path


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
