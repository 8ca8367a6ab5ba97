"""Torch's intra-op thread count for the duration of a call, then restored.

``torch.set_num_threads`` is process-global, so a setting made for one call
must be undone after it, and calls that overlap (several threads calling
``transform`` on one fitted estimator) must not undo each other's: they share
one setting, the largest requested, and the count from before the first call
comes back when the last one ends.
"""

import contextlib
import os
import threading

import torch

_lock = threading.Lock()
_requests: list = []
_count_before = None


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` torch threads; None leaves torch alone."""
    global _count_before
    if n_threads is None:
        yield
        return
    with _lock:
        if not _requests:
            _count_before = torch.get_num_threads()
        _requests.append(n_threads)
        _set(max(_requests))
    try:
        yield
    finally:
        with _lock:
            _requests.remove(n_threads)
            _set(max(_requests) if _requests else _count_before)


def _set(n_threads: int) -> None:
    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
