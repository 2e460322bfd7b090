# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a process lives, and its command line, from /proc.

Standard library only, and importable on its own: the embedded testbed's
supervisor runs as a standalone script with a copy of this file beside it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def alive(pid: int) -> bool:
    """A process with at least one thread that is not a zombie.

    A process's main thread can exit before its others (Go programs do when
    killed): /proc/<pid>/stat then says "Z" and its command line reads empty,
    yet the other threads still hold its open files, listening sockets
    included, until the last of them is gone. So every thread is looked at.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        # The state follows the command name, which is in parentheses and may hold spaces.
        if stat[stat.rindex(")") + 1:].split()[0] not in ("Z", "X"):
            return True
    return False


def argv(pid: int) -> list[str]:
    """Its command line as a list of arguments ([] once it is gone).

    Once the main thread has exited, its own entry reads empty; a thread still
    running reads the same command line.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        tasks = [] if raw else os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            break
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]] if raw else []


def parent(pid: int) -> int:
    """Its parent's pid (0 once it is gone, or for pid 1)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The parent follows the state, after the command name in parentheses.
    return int(stat[stat.rindex(")") + 1:].split()[1])


def lineage(pid: int) -> set[int]:
    """``pid`` and every process it descends from: the run that asks, never a stray of it."""
    found: set[int] = set()
    while pid > 0 and pid not in found:
        found.add(pid)
        pid = parent(pid)
    return found


def cmdline(pid: int) -> str:
    """Its command line, arguments joined by spaces ("" once it is gone)."""
    return " ".join(argv(pid))


# A character that may stand inside a path: what comes just before or after a
# path named on a command line must be none of these, so /x/wd never matches
# /x/wd-b or /y/x/wd.
_PATH_CHAR = re.compile(r"[\w.~+@-]")


def names_path(command: str, path: str | Path) -> bool:
    """Whether a command line names ``path`` itself or a path under it, as a
    whole path (after start, a space, ``=``, ``:`` or a quote; before ``/``,
    the end, or such a separator), never as the prefix of another name."""
    text = str(path).rstrip("/") or "/"
    start = 0
    while True:
        i = command.find(text, start)
        if i < 0:
            return False
        before = command[i - 1] if i else ""
        after = command[i + len(text)] if i + len(text) < len(command) else ""
        if not (before and (before == "/" or _PATH_CHAR.match(before))) and not (after and after != "/" and _PATH_CHAR.match(after)):
            return True
        start = i + 1
