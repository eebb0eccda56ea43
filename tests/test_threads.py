"""``threads``: torch's intra-op threads of a run, checked with the other settings, set before the
data loads, and recorded as the number in effect."""
import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import configure, run


@pytest.mark.parametrize("value", [0, -2, 1.5, "two", True])
def test_a_thread_count_that_is_not_a_positive_integer_is_refused(tiny, value):
    with pytest.raises(ConfigError, match=r"^threads=.* is not valid; threads must be an integer >= 1"):
        configure("GRU4Rec", "ml-100k", config_dict={**tiny, "threads": value})


def test_unset_leaves_torch_s_default(tiny):
    assert configure("GRU4Rec", "ml-100k", config_dict=tiny)[1].threads is None


def test_the_run_uses_the_threads_it_is_given_and_records_them(tiny):
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    try:
        record = run("GRU4Rec", "ml-100k", config_dict={**tiny, "threads": wanted})
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
    assert record["threads"] == wanted and record["config"]["threads"] == wanted
    record = run("GRU4Rec", "ml-100k", config_dict=tiny)  # unset: the default in effect is recorded
    assert record["threads"] == before and record["config"]["threads"] is None
