"""Reading a file whose name may not mean what it says: only regular files, only up to a size.

A FIFO in place of a plugin or a settings file would hang a plain ``open``
until someone writes to it, and ``/dev/zero`` would be read until the
process runs out of memory. So the file is opened without blocking, checked
on the opened descriptor (a rename in between cannot swap it), and its size
is checked before a byte is read.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class NotARegularFile(OSError):
    """The path names a FIFO, a device, a socket...: something that is not a file's contents."""

    def __init__(self, path: PathLike, kind: str) -> None:
        super().__init__(errno.EINVAL, f"is {kind}, not a regular file", os.fspath(path))
        self.kind = kind


class FileTooLarge(OSError):
    """The file is larger than the caller allows; ``size`` is its size (at least ``limit + 1``)."""

    def __init__(self, path: PathLike, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"is larger than {limit} bytes", os.fspath(path))
        self.size = size
        self.limit = limit


def describe_kind(mode: int) -> str:
    """What a non-regular file is, in words: "a named pipe (FIFO)", "a character device"..."""
    for test, words in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return words
    return "not a regular file"


def open_regular(path: PathLike, *, follow_symlinks: bool = True) -> int:
    """A descriptor for reading the regular file at ``path``; NotARegularFile (IsADirectoryError
    for a directory) otherwise. Never blocks, whatever the path names."""
    flags = _OPEN_FLAGS if follow_symlinks else _OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno != errno.ENXIO:  # what opening a socket (or a device with no driver) says
            raise
        mode = os.stat(path, follow_symlinks=follow_symlinks).st_mode
        if stat.S_ISREG(mode):
            raise
        raise NotARegularFile(path, describe_kind(mode)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, describe_kind(mode))
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_fd(fd: int, path: PathLike, limit: Optional[int]) -> bytes:
    """The rest of the open regular file ``fd``: FileTooLarge, before reading, past ``limit`` bytes
    (and if it grows past them while being read)."""
    size = os.fstat(fd).st_size
    if limit is not None and size > limit:
        raise FileTooLarge(path, size, limit)
    # One read of the size fstat gave, plus a byte (asking for far more than is there costs a
    # large allocation per read), then small reads until the end: a file that grew since fstat
    # is read on, up to one byte past the limit.
    data = os.read(fd, size + 1)
    chunks, total = [data], len(data)
    while limit is None or total <= limit:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if len(chunks) > 1:
        data = b"".join(chunks)
    if limit is not None and len(data) > limit:
        raise FileTooLarge(path, len(data), limit)
    return data


def read_regular_file(path: PathLike, limit: Optional[int] = None, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    NotARegularFile for a FIFO, device or socket; IsADirectoryError for a
    directory; FileTooLarge past ``limit``; other OSErrors as ``open`` raises them.
    """
    fd = open_regular(path, follow_symlinks=follow_symlinks)
    try:
        return read_fd(fd, path, limit)
    finally:
        os.close(fd)
