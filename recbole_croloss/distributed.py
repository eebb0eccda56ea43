"""Training on ``torch.distributed``, through RecBole's own multi-GPU machinery: the one module
that knows about process groups.

RecBole shards the training data by rank (``DistributedSampler`` in its dataloaders), wraps the
model in ``DistributedDataParallel`` (its Trainer averages the gradients) and reduces evaluation
metrics. What the plugin adds:

- **a backend for CPUs**: RecBole 1.2.1 hard-codes NCCL and CUDA device ids;
  :func:`init_process_group` picks NCCL on GPUs and Gloo on CPUs (``dist_backend: auto``), with a
  timeout (``dist_timeout``) so that a rank that died ends the others' collectives with an error;
  :func:`wrap_cpu_model` wraps a model in DDP on a CPU;
- **a launcher**: ``--nproc=N`` spawns N processes on this machine (:func:`launch`); under
  ``torchrun`` the ranks come from its environment (:func:`torchrun_settings`);
- **cross-rank negatives** (``gather_negatives: true``): :class:`GatheredNegatives` wraps any
  negative sampler so that every rank scores its rows against the negatives of all ranks, as one
  process with the global batch would (each rank looks the gathered ids up in its own replica of
  the item table; DDP's gradient average then equals the one-process gradient);
- **the best checkpoint on every rank**: :func:`load_and_broadcast` (rank 0 reads, all receive);
- **exact evaluation**: each user is evaluated by exactly one rank and the metric *sums* are
  reduced (:func:`shard_batches`, :func:`reduce_sums`), so the metrics equal one process's
  (RecBole's own reduction weights rounded per-rank means and counts the users its sampler pads).

Keys (``properties/overall.yaml``; read in :class:`recbole_croloss.settings.spec.DistributedSpec`):
``nproc``, ``world_size``, ``ip``, ``port``, ``offset`` (RecBole's), ``dist_backend``,
``dist_timeout``, ``gather_negatives``.
"""
from __future__ import annotations

import datetime
import os
import pickle

import torch
import torch.distributed as dist

from .errors import FAILED
from .sampler import Draws, Negatives

#: ``dist_backend``: auto (NCCL when the run has GPUs, else Gloo), or one named.
BACKENDS = ("auto", "nccl", "gloo")


class DistributedRunError(RuntimeError):
    """A rank of a distributed run failed or died; the message names which and how."""

    exit_status, exit_prefix = FAILED, "distributed run failed: "


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main(config) -> bool:
    """Whether this process writes a run's record: the only process, or global rank 0."""
    return config["single_spec"] or config["local_rank"] + (config["offset"] or 0) == 0


def init_process_group(values: dict) -> None:
    """Join the process group a run's config describes, and set its device; called by
    :class:`~recbole_croloss.settings.config.PluginConfig` in place of RecBole's NCCL-only code.

    ``values`` is RecBole's ``final_config_dict`` (``local_rank``, ``offset``, ``world_size``,
    ``ip``, ``port``, ``gpu_id``, ``dist_backend``, ``dist_timeout``); it gains ``device``,
    ``single_spec = False`` and, off rank 0, RecBole's quiet settings. RecBole's own
    ``CUDA_VISIBLE_DEVICES`` setting from ``gpu_id`` is kept as it is.
    """
    gpu_id = values["gpu_id"] = str(values.get("gpu_id", ""))
    if gpu_id:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_id
    backend = values.get("dist_backend") or "auto"
    if backend == "auto":
        backend = "nccl" if gpu_id and torch.cuda.is_available() else "gloo"
    rank = int(values["local_rank"]) + int(values.get("offset") or 0)
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend, rank=rank, world_size=int(values["world_size"]),
            init_method=f"tcp://{values['ip']}:{values['port']}",
            timeout=datetime.timedelta(seconds=float(values.get("dist_timeout") or 1800)))
    if backend == "nccl":
        values["device"] = torch.device("cuda", int(values["local_rank"]))
        torch.cuda.set_device(values["device"])
    else:
        values["device"] = torch.device("cpu")
    values["single_spec"] = False
    if int(values["local_rank"]) != 0:  # as RecBole: only local rank 0 logs
        values.update(state="error", show_progress=False, verbose=False)


class GatheredNegatives:
    """A negative sampler whose draws are shared by every rank: the draws of all W ranks in rank
    order (ids, their ``log p`` and counts; each rank may draw a different number, as in-batch
    negatives do), masked and weighted against this rank's positives. Outside a process group it
    is the wrapped sampler."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.name, self.catalogue_size = sampler.name, sampler.catalogue_size
        self.weighted = sampler.weighted

    def draw(self, pos_items) -> Draws:
        draws = self.sampler.draw(pos_items)
        if not active():
            return draws
        return Draws(*(None if part is None else gather_1d(part) for part in draws))

    def complete(self, pos_items, draws: Draws) -> Negatives:
        return self.sampler.complete(pos_items, draws)

    def __call__(self, pos_items) -> Negatives:
        return self.complete(pos_items, self.draw(pos_items))

    def mask(self, pos_items, neg_items):
        return self.sampler.mask(pos_items, neg_items)

    def __repr__(self) -> str:
        return f"GatheredNegatives({self.sampler!r})"


def gather_1d(x: torch.Tensor) -> torch.Tensor:
    """All-gather of a 1-d tensor (no gradient) whose length may differ by rank, in rank order."""
    world = dist.get_world_size()
    length = torch.tensor([len(x)], device=x.device)
    lengths = [torch.empty_like(length) for _ in range(world)]
    dist.all_gather(lengths, length)
    lengths = [int(n) for n in lengths]
    padded = torch.zeros(max(lengths), dtype=x.dtype, device=x.device)
    padded[:len(x)] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, lengths)])


def wrap_cpu_model(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in DistributedDataParallel on a CPU (Gloo), which takes no device ids (RecBole
    1.2.1 passes a CUDA index)."""
    return torch.nn.parallel.DistributedDataParallel(model)


def broadcast_object(value):
    """Rank 0's ``value`` (any picklable object), on every rank."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def load_and_broadcast(module: torch.nn.Module, load) -> None:
    """``load()`` (which fills ``module``) on rank 0 only, after every rank has arrived (rank 0
    has finished writing what it reads), then every rank takes rank 0's state. Outside a process
    group it is ``load()``."""
    if not active():
        load()
        return
    dist.barrier()
    if dist.get_rank() == 0:
        load()
    broadcast_state(module)


def broadcast_state(module: torch.nn.Module) -> None:
    """Every rank takes rank 0's parameters and buffers (e.g. the best checkpoint, which only
    rank 0 has read)."""
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def shard_batches(eval_data):
    """Yield ``(batch, keep)``: this rank's evaluation batches and how many leading rows of each
    are real users, so that every user is evaluated by exactly one rank.

    RecBole's loaders already shard by rank with a ``DistributedSampler`` that pads the last
    ranks with repeated users: those rows are dropped. A loader that is not sharded (the paper
    protocol's) is split by batch, batch ``b`` going to rank ``b % W``.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    sampler = getattr(eval_data, "sampler", None)
    if isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
        left = len(range(rank, eval_data.sample_size, world))
        for batch in eval_data:
            rows = len(batch[0])
            yield batch, min(rows, max(left, 0))
            left -= rows
    else:
        for b, batch in enumerate(eval_data):
            if b % world == rank:
                yield batch, len(batch[0])


def reduce_sums(sums: dict[str, float], users: int, device) -> tuple[dict[str, float], int]:
    """Sum the per-user metric sums and user counts over the ranks (float64)."""
    keys = sorted(sums)
    packed = torch.tensor([sums[k] for k in keys] + [float(users)], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    values = packed.tolist()
    return dict(zip(keys, values[:-1])), int(round(values[-1]))


def torchrun_settings(environ=None) -> dict | None:
    """The rank settings ``torchrun`` puts in the environment, as RecBole keys, or None."""
    env = os.environ if environ is None else environ
    if "LOCAL_RANK" not in env or "WORLD_SIZE" not in env:
        return None
    local = int(env["LOCAL_RANK"])
    return {"local_rank": local, "offset": int(env.get("RANK", local)) - local,
            "world_size": int(env["WORLD_SIZE"]), "nproc": int(env.get("LOCAL_WORLD_SIZE", 1)),
            "ip": env.get("MASTER_ADDR", "localhost"), "port": int(env.get("MASTER_PORT", 29500))}


def leave_process_group() -> None:
    """Leave the process group this process joined, if any.

    Called when a rank's run ends: a Gloo group still alive at interpreter shutdown can abort
    the process (``terminate called without an active exception``, SIGABRT) while its worker
    threads are torn down, turning a finished run into a failed one.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _spawned(local_rank, fn, args, result_queue):
    """Entry of a spawned rank: run ``fn(local_rank, *args)``; rank 0 sends its result back."""
    try:
        result = fn(local_rank, *args)
    finally:
        leave_process_group()
    if local_rank == 0 and result_queue is not None:
        # plain pickle: tensors by value (the queue's own pickler would share their memory with
        # a process that is about to exit)
        result_queue.put(pickle.dumps(result))


def launch(fn, nproc: int, args=(), timeout: float | None = None):
    """Run ``fn(local_rank, *args)`` in ``nproc`` fresh processes on this machine and return
    rank 0's result. If any rank fails or dies, the others are stopped and
    :class:`DistributedRunError` names the rank and its error or exit code."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    result_queue = ctx.SimpleQueue()
    processes = mp.start_processes(_spawned, args=(fn, args, result_queue), nprocs=nproc,
                                   join=False, start_method="spawn")
    try:
        deadline = None if timeout is None else datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        while not processes.join(timeout=1):
            if deadline is not None and datetime.datetime.now() > deadline:
                raise DistributedRunError(f"the distributed run did not finish within {timeout:g}s")
    except mp.ProcessRaisedException as err:
        raise DistributedRunError(f"rank {err.error_index} failed:\n{err}") from None
    except mp.ProcessExitedException as err:
        raise DistributedRunError(f"rank {err.error_index} died (exit code {err.exit_code}, "
                                  f"signal {err.signal_name}); the other ranks were stopped") from None
    finally:
        for p in processes.processes:
            if p.is_alive():
                p.terminate()
    return None if result_queue.empty() else pickle.loads(result_queue.get())
