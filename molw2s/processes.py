"""Worker processes that never outlive the process that started them.

Pretraining members (spawned) and sweep cells (forked) run in ``ProcessPoolExecutor``
workers, RDKit descriptors in a spawned ``multiprocessing`` pool. Three things make sure
that no worker keeps running, holding memory or writing into a run directory, once its
parent is gone or interrupted:

- :func:`start_child`, the pool's initializer, asks the kernel to SIGKILL the worker when
  its parent dies (``prctl(PR_SET_PDEATHSIG)`` on Linux; elsewhere a thread that polls
  the parent's pid), so a SIGKILL of the main process takes its workers with it. It also
  leaves interrupts to the parent: the worker ignores SIGINT (Ctrl-C reaches the whole
  process group) and gets the default SIGTERM action back (a fork inherits the parent's
  handler).
- :func:`stop_on_exit` terminates the workers at once when the code using the pool
  raises: ``KeyboardInterrupt`` (SIGINT to the main pid alone, or Ctrl-C), :class:`Terminated`,
  any error. It does not wait for running work, whose checkpoints let a rerun resume it.
- :func:`raise_on_sigterm` (installed by the ``molw2s`` command) turns SIGTERM into
  :class:`Terminated` in the main thread, so a terminated run stops like an interrupted one
  (forked processes, e.g. the chunk mapper's workers, keep the default action).

On Linux the death signal follows the *thread* that started the worker: a pool must be
created and used by one thread that outlives it (as every pool here is).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from types import FrameType

#: prctl option: the signal a process gets when its parent dies (linux/prctl.h)
PR_SET_PDEATHSIG = 1
#: seconds a terminated worker gets before it is killed
STOP_GRACE_S = 5.0
#: seconds between two checks of the parent's pid where prctl is not available
PARENT_POLL_S = 0.5


class Terminated(KeyboardInterrupt):
    """SIGTERM received: raised in the main thread, so that work stops as on Ctrl-C."""


def start_child(parent: int, initializer: Callable[..., object] | None = None, *initargs: object) -> None:
    """Pool initializer: die with ``parent`` (the pid that created the pool), leave SIGINT
    and SIGTERM handling to it, then run ``initializer(*initargs)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # a worker's progress bars need no lock shared between processes; tqdm's default, a
    # named semaphore, would be reported as leaked by multiprocessing when the worker is stopped
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    if not _kill_me_with_parent():
        threading.Thread(target=_watch_parent, args=(parent,), name="molw2s-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    if initializer is not None:
        initializer(*initargs)


def _kill_me_with_parent() -> bool:
    """Arm SIGKILL on the parent's death (Linux); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0


def _watch_parent(parent: int) -> None:
    """Exit this process as soon as ``parent`` is no longer its parent."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


@contextlib.contextmanager
def stop_on_exit(pool: ProcessPoolExecutor) -> Iterator[ProcessPoolExecutor]:
    """Use ``pool``; shut it down normally at the end, but if the body raises (an
    interrupt, SIGTERM, an error) cancel what has not started and stop the running
    workers at once instead of waiting for them."""
    try:
        yield pool
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel ``pool``'s pending work and terminate its workers (SIGTERM, then SIGKILL
    after :data:`STOP_GRACE_S`)."""
    workers = list((pool._processes or {}).values())  # no public accessor before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()
    pool.shutdown(wait=True)


def raise_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread of this process (nothing
    when called from another thread, where Python cannot install handlers). A process
    forked from this one gets the default action back, so SIGTERM still ends it at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        os.register_at_fork(after_in_child=_default_sigterm)


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
