# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two clocks: intervals from time.monotonic(), wall-clock time only to label events."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone


def wall_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Mark:
    """A point in time on both clocks."""

    mono: float
    wall: str

    @classmethod
    def now(cls) -> "Mark":
        return cls(mono=time.monotonic(), wall=wall_now())
