"""The exceptions clockwork raises.

Every error of the engine is one of these, and each is also the matching built-in, so
``except ValueError`` catches a bad config value and ``except OSError`` a missing file.
The message is the engine's own (it names the bad value and what would be accepted);
the attributes carry the parts.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "Error",
    "ConfigError",
    "ShapeError",
    "DivergedError",
    "BadFileError",
    "FileIOError",
    "BackendError",
]


class Error(Exception):
    """Base class of every clockwork error."""


class ConfigError(Error, ValueError):
    """A config value (or an argument standing for one) is out of range or inconsistent.

    Attributes: ``key`` (dotted, e.g. ``"optimizer.lr"``, or the argument's name),
    ``value`` (as written) and ``reason`` (why, and what would be accepted).
    """

    def __init__(self, message: str, key: str, value: str, reason: str):
        super().__init__(message)
        self.key = key
        self.value = value
        self.reason = reason


class ShapeError(Error, ValueError):
    """An array does not have the shape the model needs.

    Attributes: ``what`` (which argument), ``expected`` and ``got``.
    """

    def __init__(self, message: str, what: str, expected: str, got: str):
        super().__init__(message)
        self.what = what
        self.expected = expected
        self.got = got


class DivergedError(Error, ArithmeticError):
    """The loss became NaN or infinite; the trainer kept the last finite parameters.

    Attributes: ``step`` (0-based step whose loss was not finite), ``model`` (first
    model of the batch that diverged) and ``loss``.
    """

    def __init__(self, message: str, step: int, model: int, loss: float):
        super().__init__(message)
        self.step = step
        self.model = model
        self.loss = loss


class BadFileError(Error, ValueError):
    """A checkpoint, config file or run directory is malformed, damaged or not ours.

    Attributes: ``path`` and ``reason``.
    """

    def __init__(self, message: str, path: str, reason: str):
        super().__init__(message)
        self.path = path
        self.reason = reason


class FileIOError(Error, OSError):
    """The operating system refused a file operation (missing file, permissions, ...).

    Attributes: ``path`` and ``errno`` (None when the OS gave no number).
    """

    def __init__(self, message: str, path: str, errno: Optional[int] = None):
        OSError.__init__(self, message)
        self.path = path
        self.errno = errno

    def __str__(self) -> str:
        return str(self.args[0])


class BackendError(Error, RuntimeError):
    """A compute backend cannot be used or failed (e.g. CUDA asked for without a GPU)."""
