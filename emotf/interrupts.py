"""Ctrl-C that is never lost.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when
SIGINT arrives; inside a garbage-collector callback (JAX, which TensorFlow imports,
installs one) the exception is printed as "ignored" and the program runs on. The
handler installed here also sets a flag, which long loops (the records writer, each
training step) turn into ``KeyboardInterrupt`` at the next safe point with `check`.
"""

from __future__ import annotations

import signal
import threading

_FLAG = threading.Event()


def _on_sigint(signum, frame):
    _FLAG.set()
    raise KeyboardInterrupt


def install() -> None:
    """Handle SIGINT here (the commands call it; a library user keeps their own handler)."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _FLAG.clear()
        signal.signal(signal.SIGINT, _on_sigint)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came and its first exception was swallowed."""
    if _FLAG.is_set():
        raise KeyboardInterrupt
