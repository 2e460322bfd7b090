# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for experiment matrices."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

def doubling(maximum, start=1):
    """1, 2, 4, ... up to ``maximum``: the lifecycle experiment's sizes."""
    try:
        maximum, start = int(maximum), int(start)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"doubling needs whole numbers, got maximum={maximum!r}, start={start!r}") from exc
    if start < 1 or maximum < start:
        raise AnsibleFilterError(f"doubling needs 1 <= start <= maximum, got start={start}, maximum={maximum}")
    sizes, size = [], start
    while size <= maximum:
        sizes.append(size)
        size *= 2
    return sizes


class FilterModule:
    def filters(self):
        return {"doubling": doubling}
