"""A sequential dataset whose ``.inter`` file has no time field: each user's interactions are
ordered as the file lists them.

RecBole's sequential datasets sort every user's interactions by ``TIME_FIELD`` and stop when
the file has none. :class:`LineOrder` adds that field after loading, as the line number
(0, 1, 2, ...), so the sort keeps the file's order; nothing is written to the file. It is mixed
into the windowed dataset (:class:`LineOrderDataset`) and RecBole's own
(:class:`LineOrderMaterialisedDataset`).
"""
from __future__ import annotations

import numpy as np
from recbole.data.dataset import SequentialDataset
from recbole.utils import FeatureSource, FeatureType

from .windows import WindowedSequentialDataset


class LineOrder:
    def _load_inter_feat(self, token, dataset_path):
        super()._load_inter_feat(token, dataset_path)
        field = self.time_field
        if self.inter_feat is not None and field and field not in self.inter_feat:
            self.inter_feat[field] = np.arange(len(self.inter_feat), dtype=np.float64)
            self.field2source[field] = FeatureSource.INTERACTION
            self.field2type[field] = FeatureType.FLOAT
            self.field2seqlen[field] = 1
            self.field2bucketnum[field] = 2


class LineOrderDataset(LineOrder, WindowedSequentialDataset):
    pass


class LineOrderMaterialisedDataset(LineOrder, SequentialDataset):
    pass
