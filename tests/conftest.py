"""Make the collection importable as ansible_collections.fedbench.testbed.

A SIGTERM (a CI timeout, `kill`) becomes a KeyboardInterrupt, which pytest
answers by running every fixture's teardown: the clusters a test started are
stopped instead of being left behind.
"""
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _interrupt)
