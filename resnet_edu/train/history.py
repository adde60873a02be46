"""What happened in each epoch of a run, ready to plot and to store in a checkpoint."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Dict, List


@dataclass
class History:
    """What happened in each epoch; every field is a list with one entry per epoch.

    ``val_loss``/``val_acc`` are NaN when there is no validation loader;
    accuracies are fractions in [0, 1]; ``lr`` is the rate of the epoch's last step.
    """

    epoch: List[int] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    train_acc: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_acc: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, **values: float) -> None:
        for f in fields(self):
            getattr(self, f.name).append(values[f.name])

    def as_dict(self) -> Dict[str, list]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Dict[str, list]) -> History:
        return cls(**{f.name: list(values.get(f.name, [])) for f in fields(cls)})
