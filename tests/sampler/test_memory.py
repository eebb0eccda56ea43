"""Cross-batch memory: this batch's draws, then the last K batches', newest first; the ids are
masked against this batch's positives and weighted by the sampler's own proposal."""
import torch

from recbole_croloss.sampler import CrossBatchMemory, build_sampler, row_log_q

COUNTS = torch.arange(30) % 7 + 1


def test_the_last_k_batches_draws_follow_this_batch_s():
    torch.manual_seed(0)
    plain = build_sampler("popularity", 30, COUNTS, neg_per_pos=2)
    batches = [torch.tensor([3, 4]), torch.tensor([5, 6]), torch.tensor([7, 8]), torch.tensor([9, 3])]
    torch.manual_seed(0)
    alone = [plain.draw(pos) for pos in batches]
    torch.manual_seed(0)
    memory = CrossBatchMemory(build_sampler("popularity", 30, COUNTS, neg_per_pos=2), batches=2)
    for step, pos in enumerate(batches):
        neg = memory(pos)
        kept = [alone[i] for i in range(step, max(step - 3, -1), -1)]  # this batch, then up to 2 older
        items = torch.cat([d.items for d in kept])
        assert torch.equal(neg.items, items)
        assert torch.equal(neg.mask, items[None, :] != pos[:, None])
        log_p = torch.cat([d.log_p for d in kept])
        expected = row_log_q(type(kept[0])(items, log_p), neg.mask, plain.log_prob(pos))
        assert torch.allclose(neg.log_q, expected)


def test_uniform_draws_stay_unweighted_and_in_batch_counts_are_kept():
    torch.manual_seed(0)  # the samplers draw from the global generator
    memory = CrossBatchMemory(build_sampler("uniform", 30, neg_per_pos=1), batches=1)
    memory(torch.tensor([1, 2]))
    neg = memory(torch.tensor([3, 4]))
    assert len(neg.items) == 4 and neg.log_q is None
    in_batch = CrossBatchMemory(build_sampler("in_batch", 30, COUNTS), batches=1)
    in_batch(torch.tensor([5, 5, 6]))
    draws = in_batch.draw(torch.tensor([7, 8]))
    assert draws.items.tolist() == [7, 8, 5, 6] and draws.counts.tolist() == [1, 1, 2, 1]
