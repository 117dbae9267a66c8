"""One error tree for everything the harness can raise.

Every failure a user can meet derives from :class:`HarnessError`, so a test or a CI
wrapper can catch the whole family at once while still telling the kinds apart. Each
message says what was awaited (or what was wrong), for how long, and what was seen,
because a message that only says "timeout" sends people to the debugger.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error raised by the harness."""


# --- configuration -------------------------------------------------------------------


class ConfigError(HarnessError):
    """boards.yaml, a command-line option or an argument is wrong; the message names the fix."""


class UnknownBoardError(ConfigError):
    """The board name is not in boards.yaml."""


# --- building ---------------------------------------------------------------------------


class BuildError(HarnessError):
    """A firmware or host-server build failed; the message carries the tail of the build log."""


class ZephyrNotFound(BuildError):
    """No Zephyr tree could be found; the message says where we looked and how to get one."""


class ToolchainNotFound(BuildError):
    """No usable compiler for the target; the message says what to install."""


# --- transport ------------------------------------------------------------------------


class TransportError(HarnessError):
    """The byte pipe to the device failed."""


class TransportClosedError(TransportError):
    """The other end went away (process exited, pty closed, socket reset)."""


class TargetError(HarnessError):
    """A target could not be started, reset or stopped."""


class FlashError(TargetError):
    """Flashing failed; the message names the command, its exit status and its output's end."""


class ResetCommandError(TargetError):
    """A reset or power command (probe tool, lab power switch) failed or overran its deadline."""


# --- protocol ---------------------------------------------------------------------------


class ProtocolError(HarnessError):
    """The peer sent bytes that break docs/protocol.md (a malformed RPC reply, for instance)."""


class FramingError(ProtocolError):
    """A frame could not be built (payload too large for the peer, for instance)."""


class SessionError(ProtocolError):
    """Session-layer failure."""


class SessionStateError(SessionError):
    """An operation needs a state the session is not in (sending before the handshake)."""


class HandshakeTimeoutError(SessionError):
    """No StartSessionReply arrived before the deadline."""


class SessionTerminatedError(SessionError):
    """The device sent TerminateSession (it reset) while a session was up or a call was pending."""


# --- rpc --------------------------------------------------------------------------------


class RpcError(HarnessError):
    """RPC-layer failure."""


class RemoteError(RpcError):
    """The device answered with an Exception; ``remote_message`` holds its text."""

    def __init__(self, function: str, remote_message: str) -> None:
        super().__init__(f"{function} raised on the device: {remote_message}")
        self.function = function
        self.remote_message = remote_message


class CallTimeoutError(RpcError):
    """No reply arrived before the call's deadline."""
