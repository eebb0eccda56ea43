"""Devices a test runs on: the CPU always, CUDA when this machine has it.

``@on_devices`` parametrizes a test with a ``device`` argument; its CUDA case skips with a reason
on a machine without a GPU, so the prepared GPU run executes the device code paths that the CPU
suite cannot reach. ``needs_cuda`` marks a test that only makes sense on a GPU.
"""
import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
NO_CUDA_REASON = "needs a CUDA device; this machine has none (the prepared GPU run executes it)"

#: Skips a test unless CUDA is present.
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA_REASON)

#: The devices to parametrize over: ``cpu`` and, marked ``needs_cuda``, ``cuda``.
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda, id="cuda")]

#: ``@on_devices``: run the test once per device, passing ``device``.
on_devices = pytest.mark.parametrize("device", DEVICES)


def recbole_device(device: str, monkeypatch) -> dict:
    """The settings that put a RecBole run on ``device``: RecBole runs on CUDA whenever it can
    and on the CPU only with ``gpu_id: ''``; it writes ``gpu_id`` into CUDA_VISIBLE_DEVICES,
    which ``monkeypatch`` puts back after the test."""
    gpu_id = "0" if device == "cuda" else ""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", gpu_id)
    return {"gpu_id": gpu_id}
