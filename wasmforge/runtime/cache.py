"""An on-disk cache of compiled modules, so a reload or a second `load` skips Cranelift.

A compiled module (``.cwasm``) is native code: loading a file someone else
wrote would run their code. So the cache loads only files it wrote itself:

* it lives in a per-user directory (``$WASMFORGE_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/wasmforge``, else ``~/.cache/wasmforge``), created with
  mode 0700, and is not used at all when that directory (or its key) is owned
  by someone else or writable by others;
* every entry carries an HMAC-SHA256 of its name and contents under a random
  key kept in the directory (mode 0600); the HMAC is checked, over the bytes
  actually loaded, before wasmtime sees them; an entry loaded again in the
  same process is not read and checked again if its file is provably the one
  checked (same inode, size, mtime and ctime, the ctime older than two seconds
  at the check: any write since would have changed it), and is mapped by
  wasmtime from the open file;
* an entry's name is a hash of the wasm bytes, the wasmtime version and the
  engine's settings, so a module compiled for another engine is never looked up.

A missing, corrupt, tampered or mismatched entry is compiled afresh and
replaced (written to a temporary file, then renamed over). Any trouble with
the directory makes the cache step aside; it never makes a load fail.
``WASMFORGE_CACHE=off`` turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import stat
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

import wasmtime

from .._files import FileTooLarge, NotARegularFile, open_regular, read_fd, read_regular_file
from .._text import env_flag, first_line

log = logging.getLogger(__name__)

MODULE_TRAILER = b"WFCWASM1"
_MAC_SIZE = hashlib.sha256().digest_size
_KEY_FILE = "key"
_ENTRIES = "modules"
#: The cache keeps at most this many bytes of entries; the least recently used go first.
DEFAULT_LIMIT = 512 * 1024 * 1024
#: An entry verified in this process is trusted again without re-reading it only if its ctime was at
#: least this old when it was verified (see _identity): far past any filesystem's timestamp granularity.
AT_REST_NS = 2_000_000_000
#: Loading an entry marks it used (its mtime) at most this often.
TOUCH_EVERY_NS = 60_000_000_000
_PROC_FD = os.path.isdir("/proc/self/fd")


@dataclass
class CacheStats:
    """What the cache did since it was made; for tests and the benchmark."""

    hits: int = 0
    misses: int = 0
    #: Entries found but not trusted: corrupt, tampered or not loadable by this engine.
    rejected: int = 0
    stored: int = 0


class ModuleCache:
    """Compiled modules on disk under ``directory``, trusted only when their HMAC checks out."""

    def __init__(self, directory: Path, limit: int = DEFAULT_LIMIT) -> None:
        self.directory = Path(directory)
        self.limit = limit
        self.stats = CacheStats()
        self._key: Optional[bytes] = None
        self._lock = threading.Lock()
        #: Entries whose HMAC checked out in this process, by file identity (see :func:`_identity`).
        self._verified: set[tuple[object, ...]] = set()

    def __repr__(self) -> str:
        return f"ModuleCache({str(self.directory)!r})"

    def entry_path(self, engine: wasmtime.Engine, data: bytes, digest: Optional[bytes] = None) -> Path:
        """Where the compiled form of ``data`` (whose SHA-256 is ``digest``, if given) for ``engine`` is kept."""
        content = digest if digest is not None else hashlib.sha256(data).digest()
        name = hashlib.sha256(b"wasmforge module cache\0" + engine_fingerprint(engine) + content)
        return self.directory / _ENTRIES / f"{name.hexdigest()}.cwasm"

    def load_or_compile(
        self, engine: wasmtime.Engine, data: bytes, compile: Callable[[], wasmtime.Module],
        digest: Optional[bytes] = None,
    ) -> wasmtime.Module:
        """The module for ``data``: from the cache when a trusted entry exists, else ``compile()`` and store it.

        ``digest``: the SHA-256 of ``data``, if the caller has it already."""
        key = self._usable_key()
        if key is None:
            return compile()
        path = self.entry_path(engine, data, digest)
        module = self._load(engine, path, key)
        if module is not None:
            self.stats.hits += 1
            return module
        self.stats.misses += 1
        module = compile()
        self._store(module, path, key)
        return module

    def forget_verified(self) -> None:
        """Verify every entry again at its next load, as a new process would (for the benchmark)."""
        with self._lock:
            self._verified.clear()

    # ---- reading ----

    def _load(self, engine: wasmtime.Engine, path: Path, key: bytes) -> Optional[wasmtime.Module]:
        try:
            # Never blocks (a FIFO planted as an entry) and never follows a link.
            fd = open_regular(path, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except NotARegularFile as error:
            self._reject(path, error.strerror or "not a regular file")
            return None
        except OSError as error:
            log.debug("cache entry %s unreadable: %s", path, error)
            return None
        try:
            info = os.fstat(fd)
            identity = _identity(path, info)
            if identity in self._verified:
                module = _deserialize_verified(engine, fd)
                if module is not None:
                    _touch(path, info)
                    return module
            blob = read_fd(fd, path, self.limit)
            payload = self._verified_payload(blob, path, key)
            if payload is None:
                self._reject(path, "its HMAC does not match (corrupt or not written by wasmforge)")
                return None
            try:
                module = _deserialize(engine, payload, fd)
            except wasmtime.WasmtimeError as error:
                self._reject(path, f"this engine cannot load it ({first_line(error)})")
                return None
            if identity is not None and time.time_ns() - info.st_ctime_ns > AT_REST_NS:
                with self._lock:
                    self._verified.add(identity)
        except OSError as error:
            log.debug("cache entry %s unreadable: %s", path, error)
            return None
        finally:
            os.close(fd)  # the descriptor itself, not a file object around it: that cost about 5 µs a load
        _touch(path, info)
        return module

    @staticmethod
    def _verified_payload(blob: bytes, path: Path, key: bytes) -> Optional[memoryview]:
        """The compiled module in ``blob`` if its trailer (HMAC, then MODULE_TRAILER) checks out."""
        trailer = _MAC_SIZE + len(MODULE_TRAILER)
        if len(blob) <= trailer or not blob.endswith(MODULE_TRAILER):
            return None
        payload = memoryview(blob)[:-trailer]
        expected = _mac(key, path.name, payload)
        return payload if hmac.compare_digest(expected, blob[-trailer:-len(MODULE_TRAILER)]) else None

    def _reject(self, path: Path, why: str) -> None:
        self.stats.rejected += 1
        log.info("not using cached module %s: %s; compiling it again", path.name, why)

    # ---- writing ----

    def _store(self, module: wasmtime.Module, path: Path, key: bytes) -> None:
        try:
            payload = bytes(module.serialize())
            _write_atomically(path, payload + _mac(key, path.name, payload) + MODULE_TRAILER)
            self.stats.stored += 1
            self._prune(keep=path)
        except (OSError, wasmtime.WasmtimeError) as error:
            log.debug("could not cache %s: %s", path.name, error)

    def _prune(self, keep: Path) -> None:
        """Drops the least recently used entries while the cache holds more than ``limit`` bytes."""
        entries = []
        for entry in (self.directory / _ENTRIES).glob("*.cwasm"):
            try:
                info = entry.stat()
            except OSError:
                continue
            entries.append((info.st_mtime, info.st_size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries):
            if total <= self.limit:
                break
            if entry != keep:
                entry.unlink(missing_ok=True)
                total -= size

    # ---- the directory and its key ----

    def _usable_key(self) -> Optional[bytes]:
        """The HMAC key, creating the directory and key on first use; None when the cache must step aside."""
        with self._lock:
            if self._key is None:
                try:
                    self._key = self._open_key()
                except (OSError, _Untrusted) as error:
                    log.warning("not caching compiled modules in %s: %s", self.directory, error)
                    self._key = b""
            return self._key or None

    def _open_key(self) -> bytes:
        entries = self.directory / _ENTRIES
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        for directory in (self.directory, entries):
            directory.mkdir(mode=0o700, exist_ok=True)
        for directory in (self.directory, entries):
            _check_private(directory)
        key_path = self.directory / _KEY_FILE
        if not key_path.exists():
            _create_key(key_path)
        _check_private(key_path)
        try:
            key = read_regular_file(key_path, 64, follow_symlinks=False)
        except (NotARegularFile, FileTooLarge):
            raise _Untrusted(f"{key_path} is not a wasmforge cache key; delete the directory to start afresh") from None
        if len(key) != 32:
            raise _Untrusted(f"{key_path} is not a wasmforge cache key; delete the directory to start afresh")
        return key


class _Untrusted(Exception):
    """The cache directory or key could have been written by someone else."""


def _check_private(path: Path) -> None:
    if not hasattr(os, "getuid"):  # pragma: no cover - Windows: per-user profile directories
        return
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise _Untrusted(f"{path} is a symbolic link")
    if info.st_uid != os.getuid():
        raise _Untrusted(f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o022:
        raise _Untrusted(f"{path} is writable by other users; `chmod go-w {path}` to use it")


def _create_key(path: Path) -> None:
    """Writes a random key; if another process got there first, keeps theirs."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.write(fd, secrets.token_bytes(32))
        os.close(fd)
        os.link(temporary, path)  # atomic, and fails if the key exists
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mac(key: bytes, name: str, payload: "bytes | memoryview") -> bytes:
    digest = hmac.new(key, MODULE_TRAILER + name.encode("ascii") + b"\0", hashlib.sha256)
    digest.update(payload)
    return digest.digest()


def _deserialize(engine: wasmtime.Engine, payload: memoryview, fd: int) -> wasmtime.Module:
    """The verified ``payload``, mapped straight from the open file where the platform allows.

    ``/proc/self/fd/N`` is the inode just read and verified, even if the path
    has been replaced since; wasmtime ignores the trailer after the module.
    """
    proc_path = f"/proc/self/fd/{fd}"
    if os.path.exists(proc_path):
        try:
            return wasmtime.Module.deserialize_file(engine, proc_path)
        except wasmtime.WasmtimeError:
            pass  # e.g. a wasmtime that refuses the trailer: the copy below is slower but the same module
    return wasmtime.Module.deserialize(engine, bytes(payload))


def _identity(path: Path, info: os.stat_result) -> Optional[tuple[object, ...]]:
    """What must stay the same for an entry verified earlier in this process to be the bytes verified.

    The entry's name (what its HMAC covers: an entry renamed over another's name is another entry),
    and the inode, size, mtime and ctime of the open file. Writing to the file, or renaming another
    over it, changes the ctime or the inode; the ctime cannot be set back (utime sets it to now). An
    entry is remembered only when its ctime was over :data:`AT_REST_NS` old at verification, so a write
    after that lands on a later clock tick and shows. None where /proc/self/fd is missing: wasmtime
    could not map exactly the open file, so every load reads and verifies it.
    """
    if not _PROC_FD or not info.st_ctime_ns:
        return None
    return (path.name, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _deserialize_verified(engine: wasmtime.Engine, fd: int) -> Optional[wasmtime.Module]:
    """An entry verified earlier and unchanged since, mapped from the open file; None to verify it again."""
    try:
        return wasmtime.Module.deserialize_file(engine, f"/proc/self/fd/{fd}")
    except wasmtime.WasmtimeError:
        return None


def _touch(path: Path, info: os.stat_result) -> None:
    """Marks the entry used, for pruning (least recently used first); at most once a minute, as that is
    precise enough and touching changes the ctime, which would make the next load verify it again."""
    if time.time_ns() - info.st_mtime_ns < TOUCH_EVERY_NS:
        return
    try:
        os.utime(path)
    except OSError:
        pass


@functools.lru_cache(maxsize=None)
def _wasmtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmtime")
    except PackageNotFoundError:  # pragma: no cover - a source checkout of wasmtime-py
        return "unknown"


#: Engines come and go (one per plugin, when each has its own limits): weak keys let them.
_fingerprints: "weakref.WeakKeyDictionary[wasmtime.Engine, bytes]" = weakref.WeakKeyDictionary()
_fingerprints_lock = threading.Lock()


def engine_fingerprint(engine: wasmtime.Engine) -> bytes:
    """A hash of what makes compiled code loadable by ``engine``: wasmtime's version and the engine's settings.

    wasmtime writes its version and every setting that matters into the header
    of a serialized module, so an empty module serialized by ``engine`` says it all.
    """
    with _fingerprints_lock:
        fingerprint = _fingerprints.get(engine)
        if fingerprint is None:
            empty = wasmtime.Module(engine, b"\0asm\x01\0\0\0").serialize()
            fingerprint = hashlib.sha256(_wasmtime_version().encode() + b"\0" + bytes(empty)).digest()
            _fingerprints[engine] = fingerprint
        return fingerprint


_default: Optional[ModuleCache] = None
#: The environment settings _default was made for.
_default_for: tuple[Optional[str], ...] = ()
_default_lock = threading.Lock()


def cache_directory(env: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """The per-user cache directory, or None when ``WASMFORGE_CACHE=off``."""
    env = os.environ if env is None else env
    if env_flag(env, "WASMFORGE_CACHE") is False:
        return None
    if env.get("WASMFORGE_CACHE_DIR"):
        return Path(env["WASMFORGE_CACHE_DIR"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "wasmforge"


def default_cache() -> Optional[ModuleCache]:
    """The cache for the current environment (re-read each time, so tests can point it elsewhere)."""
    global _default, _default_for
    env = os.environ
    # Every variable cache_directory (and Path.home) reads: working it out again costs about 10 µs a load.
    settings = (env.get("WASMFORGE_CACHE"), env.get("WASMFORGE_CACHE_DIR"), env.get("XDG_CACHE_HOME"), env.get("HOME"))
    with _default_lock:
        if _default is not None and settings == _default_for:
            return _default
    directory = cache_directory()
    if directory is None:
        return None
    with _default_lock:
        if _default is None or _default.directory != directory:
            _default = ModuleCache(directory)
        _default_for = settings
        return _default


def _after_fork_in_child() -> None:
    """Locks another thread of the parent held at the fork would never be released in the child."""
    global _fingerprints_lock, _default_lock, _default, _default_for
    _fingerprints_lock = threading.Lock()
    _default_lock = threading.Lock()
    _default, _default_for = None, ()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def compile_cached(engine: wasmtime.Engine, data: bytes, compile: Callable[[], wasmtime.Module],
                   digest: Optional[bytes] = None) -> wasmtime.Module:
    """``compile()``, unless the default cache holds a trusted compiled form of ``data`` for ``engine``."""
    cache = default_cache()
    return compile() if cache is None else cache.load_or_compile(engine, data, compile, digest)
