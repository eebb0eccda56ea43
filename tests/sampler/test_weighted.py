"""Each sampler's log p is the frequency it draws with, and the log q a row sees is the frequency of
its valid draws; padding is never a negative; in-batch negatives mask each row's own positive.

Tolerance: over N draws the frequency of an item with probability p has standard deviation
sqrt(p (1 - p) / N); every item must lie within 5 of them (plus 1e-12), which a correct sampler
misses with probability below 1e-5 over 60 items (the seed is fixed, so the test is
deterministic), while a proposal off by a few percent for a frequent item fails it.
"""
import pytest
import torch

from recbole_croloss.sampler import build_sampler, training_frequencies

N_ITEMS = 61  # item 0 (padding) and 60 real items
BATCH = 32  # B x M stays below torch's parallel grain: no thread hand-offs per batch


def skewed_counts() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    counts = (1000.0 / torch.arange(1, N_ITEMS).double() ** 1.1).round().long()  # a long tail
    counts = counts[torch.randperm(N_ITEMS - 1, generator=g)]
    counts[5] = 0  # never a training positive: still drawable
    return torch.cat([torch.tensor([10 ** 6]), counts])  # item 0's count is ignored


def assert_frequencies(observed: torch.Tensor, total: float, expected: torch.Tensor):
    freq = observed.double() / total
    bound = 5 * (expected * (1 - expected) / total).sqrt() + 1e-12
    assert bool(((freq - expected).abs() <= bound).all()), (freq - expected).abs().max()


SETTINGS = {
    "uniform": {"neg_per_pos": 16},
    "popularity": {"neg_per_pos": 16, "neg_popularity_power": 0.75},
    "mixed": {"neg_per_pos": 16, "neg_popularity_power": 1.0, "neg_mix": 0.3},
    "in_batch": {"in_batch_uniform": 2},
}
#: Batches drawn: in-batch negatives are fewer per batch (B slots and 2B extras, against 16B).
BATCHES = {"uniform": 300, "popularity": 300, "mixed": 300, "in_batch": 1500}


def build(name):
    return build_sampler(name, N_ITEMS, skewed_counts(), **SETTINGS[name])


def proposal(name) -> torch.Tensor:
    """The proposal each sampler must draw from, written out from its definition."""
    counts = skewed_counts().double()
    counts[0] = 0
    counts[1:] = counts[1:].clamp(min=1)
    uniform = torch.cat([torch.zeros(1), torch.full((N_ITEMS - 1,), 1.0 / (N_ITEMS - 1))]).double()
    if name == "uniform":
        return uniform
    if name == "popularity":
        w = counts ** 0.75
        return w / w.sum()
    if name == "mixed":
        return 0.3 * counts / counts.sum() + 0.7 * uniform
    return (counts / counts.sum() + 2 * uniform) / 3  # in_batch: B slots and 2B uniform draws


def batch_positives(g) -> torch.Tensor:
    """B training positives drawn as batch slots are: from the training frequencies."""
    return torch.multinomial(training_frequencies(skewed_counts()).float(), BATCH, replacement=True, generator=g)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_log_p_is_the_frequency_the_sampler_draws_with(name):
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(2)
    sampler, expected = build(name), proposal(name)
    if name != "uniform":
        assert torch.allclose(sampler.log_prob(torch.arange(1, N_ITEMS)).double().exp(), expected[1:], rtol=1e-5)
    observed, total = torch.zeros(N_ITEMS, dtype=torch.float64), 0.0
    for _ in range(BATCHES[name]):
        draws = sampler.draw(batch_positives(g))
        counts = torch.ones_like(draws.items) if draws.counts is None else draws.counts
        observed.index_add_(0, draws.items, counts.double())
        total += float(counts.sum())
        assert int(draws.items.min()) >= 1  # never the padding item
        if draws.log_p is not None:
            assert torch.allclose(draws.log_p, sampler.log_prob(draws.items))
    assert observed[0] == 0
    assert_frequencies(observed[1:], total, expected[1:])


@pytest.mark.parametrize("name", ["popularity", "mixed", "in_batch"])
def test_a_row_s_log_q_is_the_frequency_of_its_valid_draws(name):
    """For row 0 (positive: the most frequent item, so hits are common), each valid draw of item
    j comes with probability p_j / (1 - p_pos); log q carries it (times M_b c_j / V_b for columns
    that stand for c_j of the row's V_b valid draws)."""
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(4)
    sampler = build(name)
    top = int(skewed_counts()[1:].argmax()) + 1
    observed, total = torch.zeros(N_ITEMS, dtype=torch.float64), 0.0
    conditioned = None
    for _ in range(BATCHES[name]):
        pos = batch_positives(g)
        pos[0] = top
        draws = sampler.draw(pos)
        neg = sampler.complete(pos, draws)
        counts = torch.ones_like(neg.items) if draws.counts is None else draws.counts
        valid = neg.mask[0]
        assert not bool(valid[neg.items == top].any())  # the row's own positive never counts
        weights = counts.double() * valid.double()
        observed.index_add_(0, neg.items, weights)
        total += float(weights.sum())
        n_columns, n_draws = float(valid.sum()), float(weights.sum())
        row = (neg.log_q[0].double() + counts.double().log() - torch.tensor(n_draws / n_columns).log()).exp()
        seen = torch.full((N_ITEMS,), float("nan"), dtype=torch.float64)
        seen[neg.items[valid]] = row[valid]
        conditioned = seen if conditioned is None else torch.where(conditioned.isnan(), seen, conditioned)
    expected = proposal(name)
    expected[top] = 0.0
    expected = expected / expected.sum()
    assert torch.allclose(conditioned[~conditioned.isnan()], expected[~conditioned.isnan()], rtol=1e-4)
    assert observed[top] == 0 and observed[0] == 0
    assert_frequencies(observed[1:], total, expected[1:])


def test_in_batch_negatives_are_the_other_positives_once_each_and_mask_each_row_s_own():
    sampler = build_sampler("in_batch", N_ITEMS, skewed_counts())
    pos = torch.tensor([7, 3, 7, 9, 3, 7])
    neg, mask, log_q = sampler(pos)
    assert neg.tolist() == [3, 7, 9] and sampler.draw(pos).counts.tolist() == [2, 3, 1]
    assert torch.equal(mask, neg[None, :] != pos[:, None])
    assert mask.sum(1).tolist() == [2] * 6 and log_q.shape == (6, 3)


def test_a_batch_of_one_positive_gets_uniform_draws_instead():
    torch.manual_seed(0)  # the stand-in uniform draw comes from the global generator
    sampler = build_sampler("in_batch", N_ITEMS, skewed_counts())
    draws = sampler.draw(torch.tensor([4]))
    assert draws.items[0] == 4 and len(draws.items) == 2
    assert float(draws.log_p[1]) == pytest.approx(-torch.log(torch.tensor(N_ITEMS - 1.0)).item())
