"""Shared by the data writers' tests."""
import pytest


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
