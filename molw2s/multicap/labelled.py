"""What a multi-capability student trains on: rows of each capability with their labels."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from molw2s.errors import DataError

#: training data of a student: capability name -> (rows of the capability (n,), labels (n,))
Labelled = Mapping[str, tuple[np.ndarray, np.ndarray]]


def check_data(data: Labelled) -> None:
    """A DataError for no capability, or one with fewer than 2 rows or mismatched labels."""
    if not data:
        raise DataError("the student needs at least one capability to train on")
    for name, (rows, y) in data.items():
        if len(rows) != len(y) or len(y) < 2:
            raise DataError(f"capability {name}: {len(rows)} molecules and {len(y)} labels (need >= 2 of each)")
