"""One exception hierarchy. Every message says what happened and what to do; the CLI prints it as one line."""

from __future__ import annotations

import enum
from typing import ClassVar


class ErrorKind(enum.Enum):
    """What kind of trouble an error is, for callers that route it (the server's status, a client's offer to
    install): decided by the error's class, never by its text."""

    FAILED = "failed"  # something did not work; the message says what to do
    NOT_INSTALLED = "not installed"  # a model or a package is missing: installing it is the fix


class GreenpatchError(Exception):
    """Base of all errors greenpatch reports to a user (CLI: one line + non-zero exit; LSP: error or log)."""

    exit_code = 2
    kind: ClassVar[ErrorKind] = ErrorKind.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(GreenpatchError):
    """The user asked for something that cannot work (bad path, bad option)."""


class ConfigError(GreenpatchError):
    """A setting has a value greenpatch cannot use."""


class ModelError(GreenpatchError):
    """A model is missing, unknown, corrupt or could not be downloaded."""


class ModelNotInstalled(ModelError):
    """A model of the manifest is not in the model cache."""

    kind = ErrorKind.NOT_INSTALLED


class ModelFileMissing(ModelNotInstalled):
    """A model given as a .gguf path that does not exist: installing a model cannot help, the setting must change."""

    kind = ErrorKind.FAILED


class ModelDownloadError(ModelError):
    pass


class ChecksumMismatch(ModelDownloadError):
    pass


class EngineUnavailable(GreenpatchError):
    """The inference engine cannot run (llama-cpp-python missing, remote server down, ...)."""


class EngineNotInstalled(EngineUnavailable):
    """Nothing installed can run a model: llama-cpp-python is missing, or no local model is there to fall back to
    while the remote server is down."""

    kind = ErrorKind.NOT_INSTALLED


class EngineCrashed(EngineUnavailable):
    """The model's process died (a native crash in llama.cpp); the next request starts a new one."""


class Cancelled(GreenpatchError):
    """Work was cancelled (superseded by a newer edit, or the client cancelled the request)."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


class UnreadableFile(GreenpatchError):
    """A file's bytes do not decode as its declared encoding (or would not come back byte for byte): greenpatch
    leaves it alone rather than guess."""


class WriteError(GreenpatchError):
    """A fix could not be written (disk full, read-only file, permission, a file changed since it was read);
    the file on disk is unchanged. Its own exit code: 1 means "fixed", so a failed write must not look like it."""

    exit_code = 4


class VerifyError(GreenpatchError):
    """Tests could not be run at all (no interpreter, pytest missing, sandbox failure)."""


class UntrustedWorkspace(VerifyError):
    def __init__(self) -> None:
        super().__init__(
            "this workspace is not trusted, so greenpatch runs none of its code (no tests, no repair)",
            "trust the workspace in your editor to enable verification",
        )
