"""A small file whose parsed content follows the file: the key file and the JWKS file, rotated without a restart."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from scoring_runtime.errors import ConfigError

logger = logging.getLogger("azmlinfsrv")

T = TypeVar("T")
# How often, at most, the file is looked at again: one stat() a second costs nothing, and rotation is seen at once.
CHECK_INTERVAL_S = 1.0
# Key files are a few hundred bytes; a path that names something huge by mistake is refused, not read into memory.
MAX_BYTES = 1024 * 1024

Signature = tuple[int, int, int]


class WatchedFile(Generic[T]):
    """The parsed content of a file, reloaded when its (mtime, size, inode) changes.

    `parse` turns the bytes into the value, or raises ValueError with a message that quotes none of the content
    (these files hold secrets). At start-up a file that cannot be read or parsed is a ConfigError; later, the last
    good value is kept and the failure is logged once per change of the file.
    """

    def __init__(self, path: str, parse: Callable[[bytes], T], label: str) -> None:
        self.path = path
        self.label = label
        self._parse = parse
        try:
            self._signature: Signature | None = _signature(path)
            self.value = parse(_read(path))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{label}: {path}: {_reason(exc)}") from None
        self._next_check = time.monotonic() + CHECK_INTERVAL_S

    def current(self) -> T:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + CHECK_INTERVAL_S
            self._refresh()
        return self.value

    def _refresh(self) -> None:
        try:
            signature: Signature | None = _signature(self.path)
        except OSError as exc:
            signature = None
            failure: Exception | None = exc
        else:
            failure = None
        if signature == self._signature:
            return
        self._signature = signature
        if failure is None:
            try:
                self.value = self._parse(_read(self.path))
            except (OSError, ValueError) as exc:
                failure = exc
        if failure is None:
            logger.info("%s: reloaded %s", self.label, self.path)
        else:
            logger.error("%s: %s: %s; keeping the previous content", self.label, self.path, _reason(failure))


def _signature(path: str) -> Signature:
    stat = os.stat(path)
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        content = file.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    return content


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
