"""The frequency samplers draw by the training split's counts, and by nothing held out."""
import torch

from recbole_croloss.glue import training_item_counts
from recbole_croloss.quick_start import prepare_run


def test_counts_are_the_training_positives_only(tiny):
    prepared = prepare_run("TwoTower", "ml-100k", config_dict={**tiny, "negatives": "popularity"})
    train = prepared.train_data._dataset
    counts = training_item_counts(train)
    assert counts.shape == (train.item_num,) and counts[0] == 0 and int(counts.sum()) == len(train)
    iid = train.iid_field
    held_out = torch.cat([d._dataset.inter_feat[iid] for d in (prepared.valid_data, prepared.test_data)])
    every = torch.bincount(torch.cat([train.inter_feat[iid], held_out]), minlength=train.item_num)
    assert torch.equal(every - torch.bincount(held_out, minlength=train.item_num), counts)
    only_held_out = (counts == 0) & (every > 0)
    assert bool(only_held_out[1:].any())  # some items are positives only in validation or test
    # ... and the sampler's proposal is these counts (one for those never a training positive)
    sampler = prepared.adapter.sampler
    weights = counts.double().clamp(min=1) ** 0.75
    weights[0] = 0
    assert torch.allclose(sampler.log_prob(torch.arange(1, train.item_num)).double().exp(),
                          (weights / weights.sum())[1:], rtol=1e-5)
