"""The training split's item counts, which the frequency-based samplers draw by.

The samplers are torch-only and never see a dataset (:mod:`recbole_croloss.sampler.weighted`);
here, where the RecBole dataset is known, each item's count as a training positive is taken from
the training split alone, so that no validation or test interaction shapes the negatives.
"""
from __future__ import annotations

import torch


def training_item_counts(train_dataset) -> torch.Tensor:
    """``[item_num]`` int64: how many training samples of ``train_dataset`` (RecBole's training
    split: one row per sample, its positive in the item field) have each item as their positive.
    Item 0, the padding item, counts 0."""
    items = train_dataset.inter_feat[train_dataset.iid_field].long()
    counts = torch.bincount(items, minlength=train_dataset.item_num)
    counts[0] = 0
    return counts
