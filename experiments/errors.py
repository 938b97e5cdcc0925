"""One clear line per failure at a script's top level.

``errors.run(main)`` replaces ``app.run(main)``: when `main` raises, the script prints one line
to stderr, ``<script>: error: <message>``, and exits with status 1 (2 for usage errors). The
library's messages name the cause, the file or flag, and what to do; an exception jaxcnn did not
anticipate is shown with its type. The traceback follows only with ``--verbosity=1`` (``-v 1``).
In a multi-process run the line says which process failed and which peers the coordination
service lost, and the process exits at once (JAX's shutdown barrier would wait for the lost).
Flag values are checked while absl parses them (experiments/config_flags.py), before `main` runs.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

from absl import app, flags

from jaxcnn.storage import space
from jaxcnn.train import distributed, host_memory

# Errors whose message is written for the user; anything else is shown with its type.
_EXPECTED = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    FloatingPointError,
    RuntimeError,
    NotImplementedError,  # a feature not built yet says so in its message
)


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (type name first when it is not one of ours)."""
    text = str(error) or type(error).__name__
    if isinstance(error, space.OutOfSpaceError):
        pass  # names what, where, the bytes needed and free, and what to do
    elif isinstance(error, OSError) and error.errno == errno.ENOSPC:
        text = f"no space left on device ({text}); free space and rerun: runs resume"
    elif not isinstance(error, (*_EXPECTED, app.UsageError)) or isinstance(error, KeyError):
        text = f"{type(error).__name__}: {text}"
    return " ".join(text.split())


def _report(error: BaseException) -> bool:
    """Print the line; True when peers are known to be lost (then nobody is waited for)."""
    script = os.path.basename(sys.argv[0])
    hint = "" if _verbose() else " [--verbosity=1 shows the traceback]"
    who, lost = "", False
    if _multiprocess():  # a SIGTERM stop is agreed by all: nobody to name
        who, lost = _peers(ask=not isinstance(error, distributed.Preempted))
    print(f"{script}: error: {who}{one_line(error)}{hint}", file=sys.stderr, flush=True)
    if _verbose():
        traceback.print_exception(error, file=sys.stderr)
    return lost


def _multiprocess() -> bool:
    return "jax" in sys.modules and sys.modules["jax"].distributed.is_initialized()


def _peers(ask: bool) -> tuple[str, bool]:
    """('process i of n: ' and which processes the coordination service lost, whether any)."""
    import jax

    me = f"process {jax.process_index()} of {jax.process_count()}: "
    lost = distributed.lost_processes() if ask else []
    if lost is None:
        return me + "lost the coordinator or could not reach it; ", True
    if lost:
        return me + f"lost process {', '.join(map(str, lost))} (no heartbeats); ", True
    return me, False


def _exit(status: int, lost: bool) -> None:
    """Exit. A multi-process run skips JAX's shutdown barrier (it would wait for lost peers);
    with every peer alive the processes leave together, process 0 (the service) last."""
    if _multiprocess():
        sys.stdout.flush()
        sys.stderr.flush()
        if not lost:
            distributed.leave_together()
        os._exit(status)
    sys.exit(status)


def _verbose() -> bool:
    return flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].value >= 1


def guarded(main):
    """`main` whose exceptions end the process with one line (module docstring)."""

    def wrapped(argv):
        try:
            return main(argv)
        except (SystemExit, KeyboardInterrupt):
            raise
        except app.UsageError as e:
            _exit(2, _report(e))
        except Exception as e:  # the top level: every failure becomes one line
            _exit(1, _report(e))

    return wrapped


def run(main) -> None:
    """``app.run(guarded(main))``, with freed host memory kept for reuse first
    (`jaxcnn.train.host_memory`: XLA:CPU's buffers no longer fault in anew at every step)."""
    host_memory.keep_freed_memory()
    app.run(guarded(main))
