"""BadNet (Gu et al., "BadNets: Identifying Vulnerabilities in the Machine Learning Model Supply Chain",
arXiv 1708.06733, 2017) exactly as the artifact of Pang et al. (2022) runs it (``bash/backdoor.sh``,
protocol §4.3): the white square resized to 3×3, opaque (``mark_alpha`` 0), at the top-left corner,
target class 0, poison percent 0.02 per batch (1 or 2 stamped copies per batch of 96).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Backdoor
from .trigger import Trigger


@dataclass(eq=False)
class BadNet(Backdoor):
    """The plain backdoor: a fixed trigger, no preparation. Defaults are the artifact's (see :class:`Backdoor`)."""

    name = "badnet"


def badnet(size: int = 3, alpha: float = 0.0, target: int = 0, poison_rate: float = 0.02) -> BadNet:
    """The artifact's BadNet with optionally changed trigger size, blend, target or poison rate."""
    return BadNet(trigger=Trigger.white_square(size, alpha=alpha), target=target, poison_rate=poison_rate)
