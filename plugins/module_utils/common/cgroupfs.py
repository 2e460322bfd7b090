# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup file system, below what uses it: the testbed's control-plane
limits (testbed/cgroups.py) and the project's Docker daemon (build/engine.py).
Standard library only."""

from __future__ import annotations

from pathlib import Path


def remove_tree(top: Path) -> list[str]:
    """Remove a group and every group below it, deepest first (rmdir refuses one
    that still holds a process); the ones left."""
    left = []
    for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [top]:
        try:
            path.rmdir()
        except OSError:
            left.append(str(path))
    return left
