"""A pytest harness for RPC over UART: handshake, reset semantics and function calls.

Entry points: ``harness.connect(board)`` for scripts, and the pytest plugin
(``harness.pytest_plugin``, registered as a ``pytest11`` entry point) for test suites.
"""

from harness.client import Client, UnknownFunctionError
from harness.connect import connect
from harness.errors import (
    BuildError,
    CallTimeoutError,
    ConfigError,
    HandshakeTimeoutError,
    HarnessError,
    ProtocolError,
    RemoteError,
    SessionTerminatedError,
    TargetError,
    ToolchainNotFound,
    TransportClosedError,
    ZephyrNotFound,
)

__all__ = [
    "BuildError",
    "CallTimeoutError",
    "Client",
    "ConfigError",
    "HandshakeTimeoutError",
    "HarnessError",
    "ProtocolError",
    "RemoteError",
    "SessionTerminatedError",
    "TargetError",
    "ToolchainNotFound",
    "TransportClosedError",
    "UnknownFunctionError",
    "ZephyrNotFound",
    "connect",
]
