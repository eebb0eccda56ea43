"""Benchmark cells as Ray tasks: ``python -m recbole_croloss.benchmark GRID --ray-address auto``.

Each cell is a task asking for ``cpus_per_cell`` CPUs and ``gpus_per_cell`` GPUs; inside it the
cell runs exactly as locally (:func:`~recbole_croloss.benchmark.runner.execute`: one CLI process),
on the GPU Ray assigned to the task. Tasks only return records: the driver is the one writer of
the result store, so a worker that dies loses nothing written and duplicates nothing (Ray retries
the task ``max_retries`` times; a cell that still fails is recorded as failed and re-run next time).

Ray is an optional extra (``pip install 'recbole-croloss[ray]'``); see README, "Ray" for the
version RecBole 1.2.1 allows and what it needs.
"""
from __future__ import annotations

import os

from ..errors import BAD_INPUT
from .runner import STOP_GRACE_SECONDS, execute


class RayUnavailableError(RuntimeError):
    """``--ray-address`` without Ray, or without its cluster; the message says which and what to install."""

    exit_status = BAD_INPUT


def _cell_task(payload: dict, threads: int | None, want_gpu: bool) -> dict:
    import ray

    gpu = str(ray.get_gpu_ids()[0]) if want_gpu and ray.get_gpu_ids() else ""
    return execute(payload, gpu, threads)


class RayExecutor:
    """Run cells on the Ray cluster at ``address`` (``auto``: the running cluster this machine
    belongs to; ``local``: start a Ray instance here with ``local_cpus`` CPUs)."""

    def __init__(self, address: str, cpus_per_cell: float = 1, gpus_per_cell: float = 0,
                 threads: int | None = None, local_cpus: int | None = None, max_retries: int = 2):
        try:
            import ray
        except ImportError as err:
            raise RayUnavailableError(f"--ray-address needs Ray ({err}); install the extra: "
                                      "pip install 'recbole-croloss[ray]'") from None
        self.ray = ray
        self.address = address
        if not ray.is_initialized():
            if address == "local":
                # Ray starts its workers at nice 15: next to any other busy process on the
                # machine the cells' processes (which inherit it) crawl; a local instance's
                # workers run at normal priority. (On a cluster, set RAY_worker_niceness there.)
                os.environ.setdefault("RAY_worker_niceness", "0")
                ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        self.cpus, self.gpus, self.threads = cpus_per_cell, gpus_per_cell, threads
        self.task = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell,
                               max_retries=max_retries)(_cell_task)

    def describe(self) -> str:
        resources = self.ray.cluster_resources()
        return (f"Ray at {self.address}: {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; "
                f"each cell {self.cpus:g} CPU, {self.gpus:g} GPU, threads {self.threads or 'default'}")

    def map_unordered(self, payloads):
        """Yield ``(payload, record or exception)`` as tasks finish. Left early, it cancels the
        tasks left and waits for them: a forced cancel ends the task's worker, and its cell dies
        with it (:mod:`.cell_processes`)."""
        refs = {self.task.remote(p, self.threads, self.gpus > 0): p for p in payloads}
        try:
            while refs:
                done, _ = self.ray.wait(list(refs), num_returns=1)
                for ref in done:
                    payload = refs.pop(ref)
                    try:
                        yield payload, self.ray.get(ref)
                    except Exception as err:  # the task's error, or its worker's death after retries
                        yield payload, err
        finally:
            for ref in refs:
                self.ray.cancel(ref, force=True)
            if refs:  # the driver lets go of the store once the workers (and so their cells) are gone
                self.ray.wait(list(refs), num_returns=len(refs), timeout=STOP_GRACE_SECONDS)

    def shutdown(self) -> None:
        if self.address == "local":
            self.ray.shutdown()
