"""Crash isolation: a foreign parser library called in a forked worker process.

A parser someone else wrote can segfault, abort on an ``assert``, spin forever or trip a sanitizer.
None of that may take the caller down: :class:`IsolatedLibrary` forks one long-lived worker that opens
the library (the same :class:`~dsparsers.verification.loader.ParserLibrary` nvinfer-style call) and
serves cases sent over a pipe. When the worker dies or runs past the timeout, the call raises
:class:`ParserCrash` (a :class:`~dsparsers.errors.LibraryError`) naming the signal, the sanitizer's
report and its first frame when there is one; the next call forks a fresh worker. Cheap: a fork per
crash, not per case (the parent has NumPy, cffi and the loader already loaded).

The worker's stdout and stderr go to a log file, read back from the offset where each case started:
that is where a sanitizer writes its report (ASan with ``abort_on_error=1`` then aborts; a report that
does not stop the process is a finding too).
"""

from __future__ import annotations

import os
import pickle
import re
import select
import signal
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dsparsers.errors import LibraryError
from dsparsers.api.abi_types import ParseOutcome, ParserCase

#: what marks a sanitizer report in the worker's stderr
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ERROR: MemorySanitizer",
                     "WARNING: ThreadSanitizer", "ERROR: UndefinedBehaviorSanitizer")
_ASAN_KIND = re.compile(r"ERROR: (\w+Sanitizer): ([\w-]+)")
_UBSAN = re.compile(r"(?:^|\s)(\S+:\d+:\d+): runtime error: (.*)")
_FRAME = re.compile(r"^\s*#(\d+) 0x[0-9a-f]+ in (.+?)$", re.M)
_HEADER = struct.Struct("<Q")


class ParserCrash(LibraryError):
    """The worker calling the library died (signal, exit), hung, or a sanitizer reported."""

    def __init__(self, kind: str, detail: str, *, signal_name: str | None = None, sanitizer: str | None = None,
                 frame: str | None = None, log: str = ""):
        self.kind = kind  # "segfault", "abort", "hang", "sanitizer", "signal", "exit"
        self.detail = detail
        self.signal_name = signal_name
        self.sanitizer = sanitizer  # e.g. "AddressSanitizer: heap-buffer-overflow"
        self.frame = frame  # the first frame of the report that is not in a sanitizer runtime
        self.log = log
        super().__init__(detail)

    @property
    def label(self) -> str:
        """The finding kind this crash is (e.g. 'crash: SIGSEGV', 'sanitizer: heap-buffer-overflow')."""
        if self.sanitizer:
            return "sanitizer: " + self.sanitizer.split(": ", 1)[-1]
        if self.kind == "hang":
            return "hang"
        return f"crash: {self.signal_name}" if self.signal_name else f"crash: {self.kind}"


def sanitizer_summary(log: str) -> tuple[str | None, str | None]:
    """(what, first frame) of the first sanitizer report in ``log``: ('AddressSanitizer: heap-buffer-overflow',
    'parse_rows libx.so+0x1234 ...'), or (None, None) when there is none."""
    what = None
    asan = _ASAN_KIND.search(log)
    ubsan = _UBSAN.search(log)
    if asan and (not ubsan or asan.start() < ubsan.start()):
        what = f"{asan.group(1)}: {asan.group(2)}"
        start = asan.end()
    elif ubsan:
        what = f"UndefinedBehaviorSanitizer: {ubsan.group(2).strip()}"
        return what, ubsan.group(1)
    else:
        return None, None
    for match in _FRAME.finditer(log, start):
        where = match.group(2).strip()
        if "sanitizer" in where or "libasan" in where or "asan_" in where.split(" ")[0] or "interceptor" in where:
            continue
        return what, where
    return what, None


def _write_message(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    """``size`` bytes from ``fd``; None at EOF; raises TimeoutError past ``deadline``."""
    chunks, got = [], 0
    while got < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_message(fd: int, deadline: float | None = None):
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(header)[0], deadline)
    return None if body is None else pickle.loads(body)


def _serve(requests: int, replies: int, log_path: str, path: str, function: str, abi: int | None, kind: str) -> None:
    """The worker: open the library, then answer ("parse", case) messages until EOF. Never returns."""
    try:
        import faulthandler

        faulthandler.disable()  # the parent reads the signal from the exit status, not a Python traceback
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash per shrink step: no core dumps
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        for name in os.listdir("/proc/self/fd"):  # other workers' pipes: their EOF must not wait on us
            fd = int(name)
            if fd > 2 and fd not in (requests, replies):
                try:
                    os.close(fd)
                except OSError:
                    pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        from dsparsers.verification.loader import ParserLibrary

        try:
            library = ParserLibrary(path, function, abi, kind=kind)
        except LibraryError as exc:
            _write_message(replies, ("open-error", str(exc)))
            os._exit(0)
        _write_message(replies, ("ready", library.abi))
        while True:
            message = _read_message(requests)
            if message is None:
                os._exit(0)
            try:
                _write_message(replies, ("ok", library.parse(message[1])))
            except LibraryError as exc:
                _write_message(replies, ("error", str(exc)))
            except Exception as exc:  # a bug of ours, reported to the parent rather than lost
                _write_message(replies, ("error", f"worker: {type(exc).__name__}: {exc}"))
    except BaseException:
        pass
    os._exit(70)


@dataclass
class _Worker:
    pid: int
    requests: int
    replies: int


class IsolatedLibrary:
    """A parser library called as :class:`ParserLibrary` calls it, but in a forked worker process.

    ``parse`` returns the same :class:`ParseOutcome`, raises :class:`LibraryError` when the parser
    threw, and :class:`ParserCrash` when the worker died, hung past ``timeout`` seconds or a sanitizer
    reported. The worker is forked again on the next call after a crash.
    """

    def __init__(self, path: str | os.PathLike, function: str, abi: int | None = None, kind: str = "detector", *,
                 timeout: float = 10.0):
        from dsparsers.verification.loader import _bridge

        self.path = Path(path)
        self.function = function
        self.kind = kind
        self.timeout = timeout
        self._requested_abi = abi
        self._worker: _Worker | None = None
        self.restarts = 0
        if not self.path.is_file():
            raise LibraryError(f"--lib {self.path}: no such file")
        _bridge()  # load cffi and the loader (building it once) before forking: the worker inherits both
        fd, log = tempfile.mkstemp(prefix="dsparsers-worker-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        self.abi = self._start()

    # -- worker lifecycle
    def _start(self) -> int:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        offset = self._log_size()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(request_w)
            os.close(reply_r)
            _serve(request_r, reply_w, str(self.log_path), str(self.path), self.function, self._requested_abi,
                   self.kind)
        os.close(request_r)
        os.close(reply_w)
        self._worker = _Worker(pid, request_w, reply_r)
        try:
            reply = _read_message(reply_r, time.monotonic() + max(self.timeout, 30.0))
        except TimeoutError:
            reply = None
        if reply is None:
            crash = self._reap(offset, timed_out=False)
            raise LibraryError(f"--lib {self.path}: the worker died while opening it ({crash.detail})")
        if reply[0] == "open-error":
            self._stop()
            raise LibraryError(reply[1])
        return int(reply[1])

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                return handle.read(1 << 20).decode("utf-8", "replace")
        except OSError:
            return ""

    def _reap(self, offset: int, *, timed_out: bool) -> ParserCrash:
        """Kill (if needed) and wait for the worker; the crash its exit status and log describe."""
        worker, self._worker = self._worker, None
        for fd in (worker.requests, worker.replies):
            try:
                os.close(fd)
            except OSError:
                pass
        if timed_out:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(worker.pid, 0)
        self.restarts += 1
        log = self._log_since(offset)
        what, frame = sanitizer_summary(log)
        if timed_out:
            return ParserCrash("hang", f"no answer within {self.timeout:g} s (the worker was killed)", log=log)
        where = f" in {frame}" if frame else ""
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
            kind = {"SIGSEGV": "segfault", "SIGBUS": "segfault", "SIGABRT": "abort"}.get(name, "signal")
            if what:
                return ParserCrash("sanitizer", f"{what}{where} (then {name})", signal_name=name, sanitizer=what,
                                   frame=frame, log=log)
            detail = {"segfault": f"killed by {name} (segmentation fault)",
                      "abort": "killed by SIGABRT (abort(), e.g. a failed assert)"}.get(kind, f"killed by {name}")
            assertion = re.search(r"^.*Assertion .*$", log, re.M)
            if assertion:
                detail += f": {assertion.group(0).strip()}"
            return ParserCrash(kind, detail, signal_name=name, log=log)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        if what:
            return ParserCrash("sanitizer", f"{what}{where} (then exit {code})", sanitizer=what, frame=frame, log=log)
        return ParserCrash("exit", f"the process exited with status {code} inside the parse function", log=log)

    def _stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        for fd in (worker.requests, worker.replies):
            try:
                os.close(fd)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(worker.pid, os.WNOHANG)
            if pid:
                return
            time.sleep(0.005)
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(worker.pid, 0)

    # -- the ParserLibrary surface
    def parse(self, case: ParserCase) -> ParseOutcome:
        if self._worker is None:
            self._start()
        offset = self._log_size()
        try:
            _write_message(self._worker.requests, ("parse", case))
            reply = _read_message(self._worker.replies, time.monotonic() + self.timeout)
        except TimeoutError:
            raise self._reap(offset, timed_out=True) from None
        except (BrokenPipeError, ConnectionResetError):
            reply = None
        if reply is None:
            raise self._reap(offset, timed_out=False)
        log = self._log_since(offset) if self._log_size() > offset else ""
        what, frame = sanitizer_summary(log) if log else (None, None)
        if what:  # a report that did not stop the process (e.g. UBSan without halt_on_error)
            raise ParserCrash("sanitizer", f"{what}{' in ' + frame if frame else ''} (the process went on)",
                              sanitizer=what, frame=frame, log=log)
        if reply[0] == "error":
            raise LibraryError(reply[1])
        return reply[1]

    def close(self) -> None:
        self._stop()
        try:
            self.log_path.unlink()
        except OSError:
            pass

    def __enter__(self) -> "IsolatedLibrary":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
