"""Negative samplers: one interface, one registry, built from their own settings only."""
import pytest
import torch

from recbole_croloss import sampler as sampler_module
from recbole_croloss.distributed import GatheredNegatives
from recbole_croloss.errors import ConfigError
from recbole_croloss.sampler import (FullNegatives, NegativeSampler, UniformNegatives, build_sampler,
                                     register_sampler)


@pytest.mark.parametrize("name, cls", [("uniform", UniformNegatives), ("full", FullNegatives)])
def test_build_sampler_passes_only_the_settings_a_sampler_takes(name, cls):
    sampler = build_sampler(name, 30, neg_per_pos=3, mask_accidental_hits=False)
    assert type(sampler) is cls
    neg, mask = sampler(torch.tensor([1, 2]))
    assert len(neg) == (6 if name == "uniform" else 30)
    assert (mask is None) == (name == "uniform")  # uniform without hit masking; full always masks


def test_an_unknown_sampler_names_the_choices():
    with pytest.raises(ConfigError, match="negatives='popular' is not valid; choose one of: full, uniform"):
        build_sampler("popular", 30)


def test_a_registered_sampler_is_nameable_and_refused_twice(monkeypatch):
    monkeypatch.setattr(sampler_module, "NEGATIVES", dict(sampler_module.NEGATIVES))

    class Fixed(NegativeSampler):
        name, options = "fixed", ()

        def __init__(self, n_items):
            self.catalogue_size = n_items - 1

        def __call__(self, pos_items):
            neg = torch.tensor([1, 2, 3])
            return neg, self.mask(pos_items, neg)

        def mask(self, pos_items, neg_items):
            return neg_items[None, :] != pos_items[:, None]

    register_sampler(Fixed)
    neg, mask = build_sampler("fixed", 10, neg_per_pos=5)(torch.tensor([2]))
    assert neg.tolist() == [1, 2, 3] and mask.tolist() == [[True, False, True]]
    with pytest.raises(ValueError, match="already registered"):
        register_sampler(type("Other", (NegativeSampler,), {"name": "fixed"}))


def test_gathered_negatives_outside_a_process_group_are_the_sampler_s():
    torch.manual_seed(3)
    expected = UniformNegatives(50, neg_per_pos=2)(torch.tensor([4, 5]))
    torch.manual_seed(3)
    got = GatheredNegatives(UniformNegatives(50, neg_per_pos=2))(torch.tensor([4, 5]))
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
