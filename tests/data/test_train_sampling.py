"""Training-sample orders: users drawn uniformly with eligible targets only, every prefix once per
epoch, the same global batches on every rank, each batch a function of the seed and the step."""
import pytest
import torch
from scipy.stats import chisquare

from recbole_croloss.data.train_sampling import TrainOrder, UserSamples, steps_per_epoch


def skewed_samples(min_history):
    """User u has 1 + 7u samples with history lengths 1, 2, ...: long users have many prefixes."""
    users = torch.cat([torch.full((1 + 7 * u,), u) for u in range(12)])
    lengths = torch.cat([torch.arange(1, 2 + 7 * u) for u in range(12)])
    perm = torch.randperm(len(users), generator=torch.Generator().manual_seed(1))  # any row order
    return users[perm], lengths[perm], UserSamples(users[perm], lengths[perm], min_history)


def test_users_are_drawn_uniformly_whatever_their_number_of_prefixes():
    users, _, samples = skewed_samples(min_history=1)
    drawn = samples.draw(120_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(users[drawn], minlength=12).double()
    expected = 120_000 / 12
    assert chisquare(counts.numpy()).pvalue > 0.001 and abs(counts.mean() - expected) < 1e-9
    # RecBole's prefixes would give user 11 78 times user 0's weight.
    assert counts.max() / counts.min() < 1.1


@pytest.mark.parametrize("min_history", [1, 4, 20])
def test_no_target_has_less_history_than_allowed_except_a_short_user_s_longest(min_history):
    users, lengths, samples = skewed_samples(min_history)
    drawn = samples.draw(50_000, torch.Generator().manual_seed(3))
    longest = torch.zeros(12, dtype=torch.long).scatter_reduce(0, users, lengths, "amax")
    short_user = longest[users[drawn]] < min_history
    assert (lengths[drawn][~short_user] >= min_history).all()
    assert (lengths[drawn][short_user] == longest[users[drawn]][short_user]).all()
    # within a user, every eligible target is drawn with equal probability
    user_11 = drawn[users[drawn] == 11]
    eligible = int((lengths[users == 11] >= min_history).sum())
    counts = torch.bincount(lengths[user_11])[min_history:].double()
    assert len(counts) == eligible and chisquare(counts.numpy()).pvalue > 0.001


def test_prefixes_train_every_sample_once_per_epoch_in_a_new_order():
    order = TrainOrder(1000, 64, seed=7, total_steps=3 * steps_per_epoch(1000, 64), steps_per_round=5)
    batches = [b for _ in range(order.n_rounds) for b in order.next_round()]
    assert len(batches) == 48 and order.step == 48
    epochs = [torch.cat(batches[i * 16:(i + 1) * 16]) for i in range(3)]
    for epoch in epochs:
        assert torch.equal(epoch.sort().values, torch.arange(1000))
    assert not torch.equal(epochs[0], epochs[1])


@pytest.mark.parametrize("users", [False, True])
def test_a_batch_depends_on_the_seed_and_the_step_only_and_ranks_share_it(users):
    samples = skewed_samples(1)[2] if users else None
    whole = TrainOrder(400, 32, 5, 30, 7, samples)
    expected = [b for _ in range(whole.n_rounds) for b in whole.next_round()]
    resumed = TrainOrder(400, 32, 5, 30, 7, samples)
    resumed.step = 14  # two rounds done
    assert all(torch.equal(a, b) for a, b in zip(expected[14:], [b for _ in range(3) for b in resumed.next_round()]))
    shares = [TrainOrder(400, 32, 5, 30, 7, samples, rank=r, world_size=2) for r in range(2)]
    first = [next(s.next_round()) for s in shares]
    assert torch.equal(torch.stack([first[0], first[1]], 1).flatten(), expected[0])


def test_rounds_cover_the_budget_and_the_last_may_be_shorter():
    order = TrainOrder(100, 10, 0, total_steps=23, steps_per_round=10)
    assert order.n_rounds == 3
    assert [len(list(order.next_round())) for _ in range(4)] == [10, 10, 3, 0]
