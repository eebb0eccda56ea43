"""Shared by the data writers' tests."""
import os
import subprocess
import time

import pytest

#: The checkout these tests belong to: the writers' processes import it, not an installed copy.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def disk_full():
    """``disk_full(n)``: a ``(handle, data)`` writer that writes until its n-th call, which raises
    ``OSError("disk full")``: a failure in the middle of writing a dataset."""

    def make(failing_call: int):
        calls = []

        def write(handle, data):
            calls.append(len(data))
            if len(calls) == failing_call:
                raise OSError("disk full")
            handle.write(data)

        return write

    return make


@pytest.fixture
def interrupt_mid_write():
    """``interrupt_mid_write(command, folder, signum)``: run ``command`` (a writer's CLI, from this
    checkout), send it ``signum`` once a temporary file in ``folder`` holds data (the writer is
    half-way), and return the finished process with its stderr."""

    def run(command, folder, signum):
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert proc.poll() is None, f"the writer ended before it was interrupted: {proc.communicate()}"
            if _temporaries_with_data(folder):
                break
            time.sleep(0.005)
        else:
            proc.kill()
            pytest.fail(f"no temporary file with data in {folder} within 60 s")
        proc.send_signal(signum)
        try:
            _, proc.err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the writer did not exit within 30 s of signal {signum}")
        return proc

    return run


def _temporaries_with_data(folder) -> list[str]:
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".tmp")]
        return [n for n in names if os.path.getsize(os.path.join(folder, n)) > 0]
    except OSError:  # not there yet, or renamed meanwhile
        return []
