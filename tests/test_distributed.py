"""Distributed training on 2 Gloo processes (this machine's CPUs), with the real process group.

- with gathered negatives, a step's loss and gradients equal one process's on the global batch
  and the union of the ranks' negatives;
- evaluation under 2 ranks gives exactly one process's metrics, and the ranks draw different
  negatives;
- the CLI trains and evaluates with ``--nproc=2`` (docs/distributed.md's command);
- a rank that dies, or stops answering, ends the run with a clear error instead of a hang.
"""
import os
import socket
import subprocess
import sys
import time
from functools import partial

import pytest
import torch
from torch import nn

from recbole_croloss import distributed
from recbole_croloss.glue import CROLossAdapter
from recbole_croloss.loss import build_loss
from recbole_croloss.sampler import Draws, InBatchNegatives, UniformNegatives
from recbole_croloss.scoring import get_score

from .conftest import TINY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def group(local_rank, port, timeout=60):
    values = {"local_rank": local_rank, "offset": 0, "world_size": 2, "ip": "localhost", "port": port,
              "gpu_id": "", "dist_backend": "auto", "dist_timeout": timeout}
    distributed.init_process_group(values)
    return values


class Toy(nn.Module):
    """A small sequential model as the adapter sees one: user = mean of the history's vectors."""

    ITEM_SEQ, ITEM_SEQ_LEN, POS_ITEM_ID, ITEM_ID = "item_seq", "item_seq_len", "pos", "item"

    def __init__(self, n_items=40, dim=6):
        super().__init__()
        self.n_items = n_items
        self.item_embedding = nn.Embedding(n_items, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, item_seq, item_seq_len):
        vectors = self.item_embedding(item_seq).sum(1) / item_seq_len.unsqueeze(1)
        return self.proj(vectors)


class GivenDraws:
    """``sampler`` with its draws fixed to ``draws`` (the union the ranks gathered)."""

    def __init__(self, sampler, draws):
        self.sampler, self.draws = sampler, draws
        self.catalogue_size, self.weighted = sampler.catalogue_size, sampler.weighted

    def __call__(self, pos_items):
        return self.sampler.complete(pos_items, self.draws)


#: The samplers the gathered step is compared for: uniform draws, and in-batch negatives (a
#: different number per rank, with counts and log q) plus one uniform extra per positive.
SAMPLERS = {"uniform": partial(UniformNegatives, 40, neg_per_pos=3),
            "in_batch": partial(InBatchNegatives, 40, torch.arange(40) % 5 + 1, in_batch_uniform=1)}


def global_batch():
    g = torch.Generator().manual_seed(7)
    return {"item_seq": torch.randint(1, 40, (8, 5), generator=g),
            "item_seq_len": torch.full((8,), 5.0, dtype=torch.float64),
            "pos": torch.randint(1, 40, (8,), generator=g)}


def adapter(kernel, alpha, sampler, gather):
    torch.manual_seed(0)
    toy = Toy().double()
    loss = build_loss("croloss", n_items=sampler.catalogue_size, kernel=kernel, alpha=alpha)
    return CROLossAdapter(toy, get_score("cosine", 5.0), loss,
                          distributed.GatheredNegatives(sampler) if gather else sampler)


def step_rank(local_rank, port, kernel, alpha, sampler):
    """One training step of rank ``local_rank`` on its half of the global batch."""
    group(local_rank, port)
    torch.manual_seed(100 + local_rank)  # each rank draws its own negatives
    net = adapter(kernel, alpha, SAMPLERS[sampler](), gather=True)
    batch = {k: v[4 * local_rank: 4 * local_rank + 4] for k, v in global_batch().items()}
    torch.manual_seed(100 + local_rank)
    draws = net.sampler.sampler.draw(batch["pos"])  # this rank's own draws
    torch.manual_seed(100 + local_rank)
    loss = net.calculate_loss(batch)
    loss.backward()
    for p in net.parameters():  # what DDP does: average the gradients over the ranks
        torch.distributed.all_reduce(p.grad)
        p.grad /= 2
    mean_loss = loss.detach().clone()
    torch.distributed.all_reduce(mean_loss)
    all_draws = Draws(*(None if part is None else distributed.gather_1d(part) for part in draws))
    torch.distributed.destroy_process_group()
    return {"loss": float(mean_loss) / 2, "draws": all_draws,
            "grads": {n: p.grad.clone() for n, p in net.named_parameters()}}


@pytest.mark.parametrize("kernel, alpha, sampler", [("softplus", 1.0, "uniform"), ("sigmoid", 1.2, "uniform"),
                                                    ("exp", 0.8, "uniform"), ("softplus", 1.0, "in_batch")])
def test_gathered_negatives_step_equals_one_process(kernel, alpha, sampler):
    got = distributed.launch(step_rank, 2, args=(free_port(), kernel, alpha, sampler), timeout=120)
    negatives = got["draws"].items
    if sampler == "uniform":
        assert negatives.shape == (24,) and not torch.equal(negatives[:12], negatives[12:])
    else:  # each rank's distinct positives, then its 4 extras
        assert len(negatives) == len(got["draws"].counts) == len(got["draws"].log_p) > 8
    one = adapter(kernel, alpha, GivenDraws(SAMPLERS[sampler](), got["draws"]), gather=False)
    loss = one.calculate_loss(global_batch())
    loss.backward()
    assert got["loss"] == pytest.approx(float(loss), rel=1e-12, abs=1e-12)
    for name, p in one.named_parameters():
        torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-10, atol=1e-12)


def eval_rank(local_rank, port, settings):
    """Build a run as rank ``local_rank`` (data, model, trainer), evaluate without training."""
    from recbole_croloss.quick_start import prepare_run

    prepared = prepare_run("TwoTower", "ml-100k", cmd_args={**settings, "local_rank": local_rank, "nproc": 2,
                                                  "world_size": 2, "ip": "localhost", "port": port})
    pos = torch.arange(1, 9)
    negatives = prepared.adapter.sampler(pos)[0]  # every rank's draws, gathered
    result = prepared.trainer.evaluate(prepared.test_data, load_best_model=False)
    shard = sum(keep for _, keep in distributed.shard_batches(prepared.test_data))
    users = torch.tensor([shard])
    torch.distributed.all_reduce(users)
    return {"result": result, "negatives": negatives, "users": int(users), "device": str(prepared.config["device"])}


def test_evaluation_on_two_ranks_equals_one_process(tiny):
    settings = {**tiny, "loss": "croloss", "metric_decimal_place": 10, "gather_negatives": True,
                "metrics": ["Recall", "NDCG", "Hit", "MRR", "Precision"]}
    got = distributed.launch(eval_rank, 2, args=(free_port(), settings), timeout=300)
    from recbole_croloss.quick_start import prepare_run

    prepared = prepare_run("TwoTower", "ml-100k", cmd_args=settings)
    one = prepared.trainer.evaluate(prepared.test_data, load_best_model=False)
    assert got["device"] == "cpu" and got["users"] == len(prepared.test_data._dataset)
    assert got["result"].keys() == one.keys()
    for key, value in one.items():
        assert got["result"][key] == pytest.approx(value, abs=1e-9), key
    neg = got["negatives"]
    assert not torch.equal(neg[: len(neg) // 2], neg[len(neg) // 2:])  # each rank its own draws


def test_cli_trains_and_evaluates_on_two_processes_spawned_or_under_torchrun(tmp_path):
    args = ["run_recbole_croloss.py", "--model=TwoTower", "--loss=croloss", "--alpha=1.2", "--gather_negatives=True",
            *[f"--{k}={v}" for k, v in TINY.items()], f"--checkpoint_dir={tmp_path / 'saved'}"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tables = []
    for launcher in ([sys.executable, *args, "--nproc=2", f"--port={free_port()}"],
                     [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                      f"--master_port={free_port()}", *args]):
        proc = subprocess.run(launcher, cwd=root, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("TwoTower on ml-100k, loss=croloss") == 1  # rank 0 reports
        table = proc.stdout.split("full ranking; test split)")[1].split("\nmodel: ")[0]  # the metrics
        recall = float(next(ln for ln in table.splitlines() if ln.startswith("recall")).split()[1])
        assert 0 < recall < 1
        tables.append(table)
    assert tables[0] == tables[1]  # the same ranks, seeds and data: the same run


def dies(local_rank, port):
    group(local_rank, port)
    if local_rank == 1:
        os._exit(3)
    torch.distributed.all_reduce(torch.ones(1))  # waits for rank 1, which is gone
    time.sleep(60)


def silent(local_rank, port):
    group(local_rank, port, timeout=3)
    if local_rank == 1:
        time.sleep(30)  # alive, but never joins the collective
    torch.distributed.all_reduce(torch.ones(1))


def test_a_dead_rank_ends_the_run_with_a_clear_error():
    start = time.time()
    with pytest.raises(distributed.DistributedRunError, match=r"rank [01] (died|failed)"):
        distributed.launch(dies, 2, args=(free_port(),), timeout=120)
    assert time.time() - start < 60


def test_a_rank_that_stops_answering_times_out():
    start = time.time()
    with pytest.raises(distributed.DistributedRunError, match="rank 0 failed"):
        distributed.launch(silent, 2, args=(free_port(),), timeout=120)
    assert time.time() - start < 30


def joins_alone(local_rank, port, fail):
    distributed.init_process_group({"local_rank": 0, "offset": 0, "world_size": 1, "ip": "localhost",
                                    "port": port, "gpu_id": "", "dist_backend": "auto", "dist_timeout": 30})
    assert torch.distributed.is_initialized()
    if fail:
        raise RuntimeError("the run failed")
    return "done"


@pytest.mark.parametrize("fail", [False, True])
def test_a_spawned_rank_leaves_its_process_group_when_its_run_ends(fail):
    # a Gloo group left alive at interpreter shutdown can abort a finished rank (SIGABRT)
    if fail:
        with pytest.raises(RuntimeError, match="the run failed"):
            distributed._spawned(0, joins_alone, (free_port(), fail), None)
    else:
        distributed._spawned(0, joins_alone, (free_port(), fail), None)
    assert not torch.distributed.is_initialized()
    distributed.leave_process_group()  # outside a group: nothing to leave


def test_torchrun_environment_becomes_rank_settings():
    env = {"LOCAL_RANK": "1", "RANK": "5", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4",
           "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29400"}
    assert distributed.torchrun_settings(env) == {"local_rank": 1, "offset": 4, "world_size": 8, "nproc": 4,
                                                  "ip": "10.0.0.1", "port": 29400}
    assert distributed.torchrun_settings({}) is None
