"""One writer per folder: an OS file lock on `<folder>/.vaelab.lock`.

The lock is `fcntl.flock` on an open file, so the operating system drops it when its holder
exits for any reason, `kill -9` included: a stale lock file never blocks anyone. There is no
PID-file race either, because the pid written into the file is only a label for messages;
the kernel's lock is the truth.

Choices, and why:
- The lock file is opened without truncation and written only once the lock is held, so a
  process that fails to get the lock has changed nothing, not even the pid inside.
- A folder that does not exist yet is created to hold the lock (nobody else can hold a lock
  in a folder that was not there). If the lock's holder leaves it holding nothing but the
  lock file, both are removed on release, so a command that failed before writing anything
  leaves the disk exactly as it found it.
- The lock file is removed on release (while still held). A waiter that then acquires the
  removed file notices, because the path no longer names the inode it locked, and retries.
- Locks are re-entrant within one process (a study holds a model folder while the trainer
  takes it again): flock would otherwise refuse the second open of the same file.
- Readers (`vaelab eval`, status) never take the lock.
- flock works between the processes of one machine and, on most network file systems
  (NFS v4, Lustre, CephFS), between machines; on one that ignores flock it locks nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vaelab.core.errors import VaelabError
from vaelab.core.folders import LOCK_FILE

POLL_SECONDS = 0.2

# Folders this process holds, by resolved path -> how many holders; makes the lock re-entrant.
_held: dict[Path, int] = {}
_held_guard = threading.Lock()


class FolderLock:
    """An exclusive lock on one folder; `acquire()` / `release()`, or use it with `with`.

    `wait=False`: a folder held by another process is a VaelabError at once, naming its pid.
    `wait=True`: wait for it (up to `timeout` seconds, None: for ever), calling `on_wait`
    once with a one-line message saying whom it waits for.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        wait: bool = False,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.wait = wait
        self.timeout = timeout
        self.on_wait = on_wait
        self._fd: int | None = None
        self._key: Path | None = None
        self._created_folder = False

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self._make_folder()
        key = self.path.resolve()
        with _held_guard:
            if key in _held:
                _held[key] += 1
                self._key = key
                return
        try:
            self._fd = self._lock_file()
        except BaseException:
            self._remove_folder_if_empty()
            raise
        self._write_holder(self._fd)
        with _held_guard:
            _held[key] = 1
        self._key = key

    def release(self) -> None:
        if self._key is None:
            return
        with _held_guard:
            _held[self._key] -= 1
            last = _held[self._key] == 0
            if last:
                del _held[self._key]
        self._key = None
        if not last or self._fd is None:
            return
        with contextlib.suppress(OSError):  # unlinked while still held: no waiter sees a gap
            (self.path / LOCK_FILE).unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        self._remove_folder_if_empty()

    # --- the pieces ---------------------------------------------------------------------------

    def _make_folder(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise VaelabError(f"{self.path} is a file, not a folder; choose another folder")
        if self.path.is_dir():
            return
        try:
            self.path.mkdir(parents=True)
            self._created_folder = True
        except FileExistsError:
            pass  # another process made it a moment ago
        except OSError as err:
            raise VaelabError(f"cannot create folder {self.path}: {err.strerror}") from None

    def _lock_file(self) -> int:
        """Open and flock the lock file; retry if it was removed by its last holder meanwhile."""
        lock_path = self.path / LOCK_FILE
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as err:
                raise VaelabError(f"cannot lock {self.path}: {err.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise VaelabError(f"cannot lock {self.path}: {err.strerror}") from None
                holder = read_holder(self.path)
                if not self.wait:
                    raise VaelabError(f"{self.path} is in use by {holder}") from None
                if deadline is not None and time.monotonic() > deadline:
                    raise VaelabError(
                        f"{self.path} is still in use by {holder} after {self.timeout:g} s"
                    ) from None
                if not told and self.on_wait is not None:
                    self.on_wait(f"waiting for {self.path}, in use by {holder}")
                told = True
                time.sleep(POLL_SECONDS)
                continue
            if _same_file(fd, lock_path):
                return fd
            os.close(fd)  # we locked a file its last holder had just removed: take the new one

    def _write_holder(self, fd: int) -> None:
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        text = f"{os.getpid()} {socket.gethostname()} {started}\n".encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text, 0)
        except OSError:
            pass  # the pid is only a label for other processes' messages; the lock holds

    def _remove_folder_if_empty(self) -> None:
        if not self._created_folder:
            return
        with contextlib.suppress(OSError):  # fails, as it should, if anything was written
            self.path.rmdir()


def read_holder(path: str | Path) -> str:
    """'process <pid> (<host>)' from the folder's lock file, or 'another process'."""
    try:
        fields = (Path(path) / LOCK_FILE).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        fields = []
    if len(fields) >= 2 and fields[0].isdigit():
        return f"process {fields[0]} ({fields[1]})"
    return "another process"


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


@contextmanager
def folder_lock(
    path: str | Path,
    *,
    wait: bool = False,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[FolderLock]:
    """Hold `path` for the duration of the block; see `FolderLock`."""
    lock = FolderLock(path, wait=wait, timeout=timeout, on_wait=on_wait)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
