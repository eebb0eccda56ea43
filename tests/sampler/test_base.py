"""Negative samplers: one interface, one registry, built from their own settings only."""
import math

import pytest
import torch

from recbole_croloss.distributed import GatheredNegatives
from recbole_croloss.errors import ConfigError
from recbole_croloss.sampler import base
from recbole_croloss.sampler import (Draws, FullNegatives, NegativeSampler, UniformNegatives, build_sampler,
                                     register_sampler, row_log_q)


@pytest.mark.parametrize("name, cls", [("uniform", UniformNegatives), ("full", FullNegatives)])
def test_build_sampler_passes_only_the_settings_a_sampler_takes(name, cls):
    torch.manual_seed(0)  # the uniform sampler draws from the global generator
    sampler = build_sampler(name, 30, neg_per_pos=3, mask_accidental_hits=False, neg_mix=0.3)
    assert type(sampler) is cls
    neg, mask, log_q = sampler(torch.tensor([1, 2]))
    assert len(neg) == (6 if name == "uniform" else 30)
    assert (mask is None) == (name == "uniform")  # uniform without hit masking; full always masks
    assert log_q is None  # the estimators' own coefficients are the weights of uniform draws


def test_an_unknown_sampler_names_the_choices():
    with pytest.raises(ConfigError, match="negatives='popular' is not valid; choose one of: full, in_batch, "
                                          "mixed, popularity, uniform"):
        build_sampler("popular", 30)


def test_a_frequency_sampler_needs_the_counts():
    with pytest.raises(ValueError, match="give item_counts"):
        build_sampler("popularity", 30)


def test_a_registered_sampler_is_nameable_and_refused_twice(monkeypatch):
    monkeypatch.setattr(base, "NEGATIVES", dict(base.NEGATIVES))

    class Fixed(NegativeSampler):
        name, options = "fixed", ()

        def __init__(self, n_items):
            self.catalogue_size = n_items - 1

        def draw(self, pos_items):
            return Draws(torch.tensor([1, 2, 3]))

        def mask(self, pos_items, neg_items):
            return neg_items[None, :] != pos_items[:, None]

    register_sampler(Fixed)
    neg, mask, log_q = build_sampler("fixed", 10, neg_per_pos=5)(torch.tensor([2]))
    assert neg.tolist() == [1, 2, 3] and mask.tolist() == [[True, False, True]] and log_q is None
    with pytest.raises(ValueError, match="already registered"):
        register_sampler(type("Other", (NegativeSampler,), {"name": "fixed"}))


def test_gathered_negatives_outside_a_process_group_are_the_sampler_s():
    torch.manual_seed(3)
    expected = UniformNegatives(50, neg_per_pos=2)(torch.tensor([4, 5]))
    torch.manual_seed(3)
    got = GatheredNegatives(UniformNegatives(50, neg_per_pos=2))(torch.tensor([4, 5]))
    assert torch.equal(got.items, expected.items) and torch.equal(got.mask, expected.mask)


def test_row_log_q_by_hand():
    """Two columns, the second standing for 3 draws; row 0's positive is item 7 (p = 0.2) and
    masks column 0; row 1 masks nothing of them."""
    draws = Draws(torch.tensor([7, 9]), torch.tensor([0.2, 0.1], dtype=torch.float64).log(),
                  torch.tensor([1, 3]))
    mask = torch.tensor([[False, True], [True, True]])
    log_p_pos = torch.tensor([0.2, 0.05], dtype=torch.float64).log()
    got = row_log_q(draws, mask, log_p_pos)
    # row 0: one valid column of 3 draws: q = 0.1 / 0.8 * 3 / (3 * 1)
    assert float(got[0, 1]) == pytest.approx(math.log(0.1 / 0.8))
    # row 1: V = 4 draws in M = 2 columns; q_j = p_j / 0.95 * (V / M) / c_j
    assert float(got[1, 0]) == pytest.approx(math.log(0.2 / 0.95 * 2))
    assert float(got[1, 1]) == pytest.approx(math.log(0.1 / 0.95 * 2 / 3))
    # the loss's (1/M) sum phi / q is then (1/V) sum_draws phi / q' with q' the conditioned p
    phi = torch.tensor([0.5, 0.25], dtype=torch.float64)
    estimate = (phi / got[1].exp()).sum() / 2
    assert float(estimate) == pytest.approx((0.5 / (0.2 / 0.95) + 3 * 0.25 / (0.1 / 0.95)) / 4)
