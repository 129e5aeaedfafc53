"""JSON-RPC as the LSP specification has it, on top of pygls: every request gets a response.

pygls 2.1 drops some messages without answering, and the client then waits forever: a request whose params fail
validation (its `structure_message` raises, and the read loop only logs), JSON that does not parse, a request
after `shutdown`. It also serves requests before `initialize`, and its `exit` always ends the process with 0 (the
`SystemExit` it raises is swallowed by its own start_io). This subclass answers each of those with the error the
specification names and remembers the exit code for `serve()` to return; everything else is pygls' own handling.
"""

from __future__ import annotations

import logging
from typing import Any, TypeGuard

import attrs
import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import RPCNotification, RPCRequest

log = logging.getLogger(__name__)


@attrs.define
class Unreadable:
    """A JSON object that pygls could not turn into a message (wrong envelope or params that fail validation)."""

    data: dict[str, Any]
    error: Exception


def _valid_id(value: Any) -> TypeGuard[int | str]:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


class GreenpatchProtocol(LanguageServerProtocol):
    """LanguageServerProtocol that answers what pygls leaves unanswered (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        # what the process exits with: 1 when the client sends `exit` without `shutdown` first (LSP: "exit")
        self.exit_code = 0

    def structure_message(self, data: dict[str, Any]) -> Any:
        # pygls raises here, inside json.loads' object_hook, and its read loop then only logs: keep the object so
        # handle_message can answer it
        try:
            message = super().structure_message(data)
        except JsonRpcException as exc:
            return Unreadable(data, exc)
        if "jsonrpc" in data and "id" in data and "method" in data and not isinstance(message, RPCRequest):
            # a notification's method with an id: structured as the notification, its id dropped, never answered
            return Unreadable(data, JsonRpcMethodNotFound(f"{data['method']} is a notification, not a request"))
        return message

    def handle_message(self, message: Any) -> None:
        if isinstance(message, Unreadable):
            self._unreadable(message)
            return
        if not attrs.has(type(message)):  # not an object (a list, a string, null), or one with no "jsonrpc"
            msg_id = message.get("id") if isinstance(message, dict) else None
            self._problem(f"not a JSON-RPC 2.0 message: {_short(message)}")
            self.refuse(msg_id if _valid_id(msg_id) else None, types.ErrorCodes.InvalidRequest,
                        "not a JSON-RPC 2.0 message")
            return
        is_request = isinstance(message, RPCRequest)
        if is_request and (message.jsonrpc != self.VERSION or not _valid_id(message.id)):
            self.refuse(message.id if _valid_id(message.id) else None, types.ErrorCodes.InvalidRequest,
                        "not a JSON-RPC 2.0 request")
            return
        if is_request:
            if self._refused(message.id, message.method):
                return
            if message.method == types.INITIALIZE:
                self.initialize_received = True
        elif isinstance(message, RPCNotification):
            if message.method == types.EXIT:
                self.exit_code = 0 if self._shutdown else 1
            elif not self.initialize_received:
                self._problem(f"{message.method} before initialize: dropped")
                return  # LSP: notifications before initialize are dropped, except exit
        super().handle_message(message)

    def _refused(self, msg_id: Any, method: str) -> bool:
        """Answer a request the lifecycle does not allow now with its error; whether it was answered."""
        if self._shutdown:
            self.refuse(msg_id, types.ErrorCodes.InvalidRequest, f"{method}: the server is shutting down")
        elif method == types.INITIALIZE and self.initialize_received:
            self.refuse(msg_id, types.ErrorCodes.InvalidRequest, "initialize was already received")
        elif method != types.INITIALIZE and not self.initialize_received:
            self.refuse(msg_id, types.ErrorCodes.ServerNotInitialized, f"{method}: initialize first")
        else:
            return False
        return True

    def _unreadable(self, message: Unreadable) -> None:
        data = message.data
        method, msg_id = data.get("method"), data.get("id")
        why = _why(message.error)
        if "method" not in data:
            # a response to one of our requests: fail what waits on it rather than leave it waiting
            self._problem(f"unreadable response from the client: {why}")
            if _valid_id(msg_id):
                self._handle_response(msg_id, None, types.ResponseError(
                    code=types.ErrorCodes.InvalidParams, message=f"unreadable response: {why}"))
            return
        if "id" not in data:
            self._problem(f"{method}: notification dropped, its params are not valid: {why}")
            return
        if not _valid_id(msg_id) or not isinstance(method, str) or data.get("jsonrpc") != self.VERSION:
            self.refuse(msg_id if _valid_id(msg_id) else None, types.ErrorCodes.InvalidRequest,
                        "not a JSON-RPC 2.0 request")
            return
        if self._refused(msg_id, method):
            return
        if isinstance(message.error, JsonRpcMethodNotFound):
            self.refuse(msg_id, types.ErrorCodes.MethodNotFound, message.error.message)
            return
        self._problem(f"{method}: params are not valid: {why}")
        self.refuse(msg_id, types.ErrorCodes.InvalidParams, f"{method}: params are not valid: {why}")

    def refuse(self, msg_id: Any, code: int, message: str) -> None:
        """Send an error response. Written as a dict: the typed ResponseErrorMessage drops an `id` of None, and
        JSON-RPC wants `"id": null` where the request's id could not be read."""
        self._send_data({"jsonrpc": self.VERSION, "id": msg_id, "error": {"code": int(code), "message": message}})

    def _problem(self, text: str) -> None:
        # the client got its error response; the user gets no pop-up, the log says what happened. LSP allows no
        # notification before initialize.
        log.warning("%s", text)
        if self.initialize_received:
            self.notify(types.WINDOW_LOG_MESSAGE,
                        types.LogMessageParams(type=types.MessageType.Warning, message=f"greenpatch: {text}"))


def _why(error: Exception) -> str:
    """What cattrs found wrong, in its words ("required field missing @ $.params")."""
    cause = error.__cause__ or error
    if isinstance(cause, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        return _short("; ".join(cattrs.transform_error(cause)))
    return _short(cause)


def _short(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
