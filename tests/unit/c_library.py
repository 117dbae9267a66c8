"""ctypes access to the real C server code, through ``build/host/librpc_server_test.so``.

The shim (``zephyr_app/host/test_shim.c``) exposes the portable server with plain pointer +
size functions, so nothing here depends on C struct layouts. :func:`load` builds the host
tree with CMake + Ninja when the library is missing or older than any C source, so
``pytest tests/unit`` works from a clean checkout.

``RPC_C_BUILD_DIR`` selects another build directory (for instance a sanitized one, which
then needs ``LD_PRELOAD`` of the sanitizer runtime to be loaded into Python).
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import struct
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST_SOURCE_DIR = PROJECT_ROOT / "zephyr_app" / "host"
SERVER_SOURCE_DIR = PROJECT_ROOT / "zephyr_app" / "rpc_server"
LIBRARY_NAME = "librpc_server_test.so"

_SIZE_ERROR = ctypes.c_size_t(-1).value
_u8p = ctypes.POINTER(ctypes.c_uint8)
_size = ctypes.c_size_t


def build_dir() -> Path:
    return Path(os.environ.get("RPC_C_BUILD_DIR", PROJECT_ROOT / "build" / "host"))


def _sources() -> list[Path]:
    files: list[Path] = []
    for root in (SERVER_SOURCE_DIR, HOST_SOURCE_DIR):
        for pattern in ("*.c", "*.h", "*.cmake", "CMakeLists.txt"):
            files.extend(root.rglob(pattern))
    return files


def _stale(library: Path) -> bool:
    if not library.exists():
        return True
    built = library.stat().st_mtime
    return any(source.stat().st_mtime > built for source in _sources())


def _run(command: list[str], what: str) -> None:
    from harness.errors import BuildError

    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise BuildError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{tail}")


def ensure_built() -> Path:
    """Path of the test library, (re)built first if it is missing or stale."""
    directory = build_dir()
    library = directory / LIBRARY_NAME
    if not _stale(library):
        return library
    # Imported here so that loading the library never depends on the rest of the harness.
    from harness.errors import BuildError, ToolchainNotFound

    missing = [tool for tool in ("cmake", "ninja", "gcc") if shutil.which(tool) is None]
    if missing:
        raise ToolchainNotFound(
            f"cannot build {library}: missing {', '.join(missing)}. Install them with: "
            "apt-get install --no-install-recommends cmake ninja-build gcc"
        )
    if not (directory / "CMakeCache.txt").exists():
        _run(
            [
                "cmake",
                "-S",
                str(HOST_SOURCE_DIR),
                "-B",
                str(directory),
                "-G",
                "Ninja",
                "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
            ],
            f"configuring {directory}",
        )
    _run(["ninja", "-C", str(directory)], f"building {directory}")
    if not library.exists():
        raise BuildError(f"the build of {directory} finished but {library} is missing")
    return library


def _declare(lib: ctypes.CDLL) -> None:
    signatures: dict[str, tuple[object, list[object]]] = {
        "rpc_test_max_packet": (_size, []),
        "rpc_test_crc16": (ctypes.c_uint16, [_u8p, _size]),
        "rpc_test_frame": (_size, [_u8p, _size, ctypes.c_int, _u8p, _size]),
        "rpc_test_frame_chunked": (_size, [_u8p, _size, ctypes.c_int, _size, _u8p, _size]),
        "rpc_test_unframer_new": (ctypes.c_void_p, [_size]),
        "rpc_test_unframer_free": (None, [ctypes.c_void_p]),
        "rpc_test_unframer_feed": (None, [ctypes.c_void_p, _u8p, _size]),
        "rpc_test_unframer_next": (_size, [ctypes.c_void_p, _u8p, _size]),
        "rpc_test_unframer_stats": (None, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]),
        "rpc_test_dispatch": (_size, [_u8p, _size, _u8p, _size]),
        "rpc_test_server_new": (ctypes.c_void_p, [ctypes.c_uint8]),
        "rpc_test_server_free": (None, [ctypes.c_void_p]),
        "rpc_test_server_start": (ctypes.c_int, [ctypes.c_void_p]),
        "rpc_test_server_feed": (None, [ctypes.c_void_p, _u8p, _size]),
        "rpc_test_server_log": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, _size]),
        "rpc_test_server_output": (_size, [ctypes.c_void_p, _u8p, _size]),
        "rpc_test_server_console": (_size, [ctypes.c_void_p, _u8p, _size]),
        "rpc_test_server_status": (None, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64)]),
        "rpc_test_server_stats": (None, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]),
        "rpc_test_session_new": (ctypes.c_void_p, [ctypes.c_uint8]),
        "rpc_test_session_free": (None, [ctypes.c_void_p]),
        "rpc_test_session_start": (ctypes.c_int, [ctypes.c_void_p]),
        "rpc_test_session_initiate": (ctypes.c_int, [ctypes.c_void_p]),
        "rpc_test_session_receive": (None, [ctypes.c_void_p, _u8p, _size]),
        "rpc_test_session_state": (ctypes.c_uint32, [ctypes.c_void_p]),
        "rpc_test_session_take": (_size, [ctypes.c_void_p, ctypes.c_int, _u8p, _size]),
        "rpc_test_next_nonce": (ctypes.c_uint8, [ctypes.c_uint8]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def _sanitized(directory: Path) -> bool:
    cache = directory / "CMakeCache.txt"
    return cache.exists() and "RPC_SANITIZE:BOOL=ON" in cache.read_text(errors="replace")


@functools.lru_cache(maxsize=1)
def load() -> ctypes.CDLL:
    """The test library, built if needed, with every function's signature declared."""
    library = ensure_built()
    if _sanitized(library.parent) and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        # Loading an ASan library into an uninstrumented Python kills the process silently.
        raise RuntimeError(
            f"{library} is built with sanitizers; run Python with "
            'LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" '
            "ASAN_OPTIONS=detect_leaks=0"
        )
    lib = ctypes.CDLL(str(library))
    _declare(lib)
    return lib


def _in(data: bytes) -> ctypes.Array[ctypes.c_uint8]:
    # One spare byte: ctypes arrays of length 0 are fine, but a real pointer is nicer to C.
    return (ctypes.c_uint8 * (len(data) + 1)).from_buffer_copy(data + b"\0")


def _take(function: object, *args: object, initial: int = 4096) -> bytes:
    """Call a shim "copy out if it fits, else tell the size" function until it fits."""
    cap = initial
    while True:
        out = (ctypes.c_uint8 * cap)()
        n = function(*args, out, cap)  # type: ignore[operator]
        if n == _SIZE_ERROR:
            raise RuntimeError(f"{function} reported an error")
        if n <= cap:
            return bytes(out[:n])
        cap = n


def _records(blob: bytes) -> list[bytes]:
    """Split the shim's u32-length-prefixed records."""
    items, pos = [], 0
    while pos < len(blob):
        (n,) = struct.unpack_from("=I", blob, pos)
        items.append(blob[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return items


STAT_NAMES = ("delivered", "bad_crc", "too_long", "invalid_escape", "interrupted")


def max_packet() -> int:
    return int(load().rpc_test_max_packet())


def crc16(data: bytes) -> int:
    return int(load().rpc_test_crc16(_in(data), len(data)))


def frame(payload: bytes, *, nop: bool = False, chunk: int = 0) -> bytes:
    """Wire bytes of one packet; ``chunk`` > 0 streams the payload in pieces of that size."""
    lib = load()
    return _take(lib.rpc_test_frame_chunked, _in(payload), len(payload), int(nop), chunk)


def next_nonce(nonce: int) -> int:
    return int(load().rpc_test_next_nonce(nonce))


def dispatch(request: bytes) -> bytes:
    """The built-in dispatcher's reply to one RPC packet (b"" for no reply)."""
    lib = load()
    return _take(lib.rpc_test_dispatch, _in(request), len(request), initial=max_packet())


class CUnframer:
    """The C unframer with a buffer of ``max_payload`` bytes."""

    def __init__(self, max_payload: int) -> None:
        self._lib = load()
        self._handle = self._lib.rpc_test_unframer_new(max_payload)
        if not self._handle:
            raise MemoryError("rpc_test_unframer_new failed")
        self._max_payload = max_payload

    def close(self) -> None:
        if self._handle:
            self._lib.rpc_test_unframer_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()

    def feed(self, data: bytes) -> list[bytes]:
        """Feed bytes; return the payloads completed by them."""
        self._lib.rpc_test_unframer_feed(self._handle, _in(data), len(data))
        payloads = []
        out = (ctypes.c_uint8 * (self._max_payload + 1))()
        while True:
            n = self._lib.rpc_test_unframer_next(self._handle, out, len(out))
            if n == _SIZE_ERROR:
                return payloads
            payloads.append(bytes(out[:n]))

    @property
    def stats(self) -> dict[str, int]:
        raw = (ctypes.c_uint32 * 5)()
        self._lib.rpc_test_unframer_stats(self._handle, raw)
        return dict(zip(STAT_NAMES, raw, strict=True))


def unframe_chunks(max_payload: int, chunks: list[bytes]) -> tuple[list[bytes], dict[str, int]]:
    """Feed ``chunks`` in order to a fresh C unframer; the payloads and its final counters."""
    unframer = CUnframer(max_payload)
    try:
        payloads: list[bytes] = []
        for chunk in chunks:
            payloads.extend(unframer.feed(chunk))
        return payloads, unframer.stats
    finally:
        unframer.close()


class CServer:
    """A whole C server with a fixed nonce seed; its wire output is captured."""

    def __init__(self, nonce_seed: int) -> None:
        self._lib = load()
        self._handle = self._lib.rpc_test_server_new(nonce_seed)
        if not self._handle:
            raise MemoryError("rpc_test_server_new failed")

    def close(self) -> None:
        if self._handle:
            self._lib.rpc_test_server_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()

    def start(self) -> int:
        return int(self._lib.rpc_test_server_start(self._handle))

    def feed(self, data: bytes) -> None:
        self._lib.rpc_test_server_feed(self._handle, _in(data), len(data))

    def log(self, text: bytes) -> int:
        return int(self._lib.rpc_test_server_log(self._handle, text, len(text)))

    def output(self) -> bytes:
        """Wire bytes sent since the last call."""
        return _take(self._lib.rpc_test_server_output, self._handle)

    def console(self) -> list[str]:
        """Console lines since the last call."""
        text = _take(self._lib.rpc_test_server_console, self._handle).decode()
        return text.splitlines()

    def status(self) -> dict[str, int]:
        raw = (ctypes.c_uint64 * 4)()
        self._lib.rpc_test_server_status(self._handle, raw)
        return dict(zip(("state", "session_id", "resets", "slept_ms"), raw, strict=True))

    @property
    def stats(self) -> dict[str, int]:
        raw = (ctypes.c_uint32 * 5)()
        self._lib.rpc_test_server_stats(self._handle, raw)
        return dict(zip(STAT_NAMES, raw, strict=True))


SESSION_STATES = ("no_session", "init_sent", "established")


class CSession:
    """The bare C session layer (both roles); messages are frame payloads."""

    def __init__(self, nonce_seed: int) -> None:
        self._lib = load()
        self._handle = self._lib.rpc_test_session_new(nonce_seed)
        if not self._handle:
            raise MemoryError("rpc_test_session_new failed")

    def close(self) -> None:
        if self._handle:
            self._lib.rpc_test_session_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()

    def start(self) -> None:
        self._lib.rpc_test_session_start(self._handle)

    def initiate(self) -> None:
        self._lib.rpc_test_session_initiate(self._handle)

    def receive(self, message: bytes) -> None:
        self._lib.rpc_test_session_receive(self._handle, _in(message), len(message))

    @property
    def state(self) -> str:
        return SESSION_STATES[self._lib.rpc_test_session_state(self._handle) & 0xFF]

    @property
    def session_id(self) -> int:
        return int(self._lib.rpc_test_session_state(self._handle) >> 8)

    def _take(self, which: int) -> list[bytes]:
        return _records(_take(self._lib.rpc_test_session_take, self._handle, which))

    def sent(self) -> list[bytes]:
        return self._take(0)

    def normal_bodies(self) -> list[bytes]:
        return self._take(1)

    def logs(self) -> list[bytes]:
        return self._take(2)
