"""initialize / initialized / configuration / shutdown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from greenpatch.protocol.convert import uri_to_path

if TYPE_CHECKING:
    from greenpatch.protocol.server import GreenpatchServer

log = logging.getLogger(__name__)


def _root(params: types.InitializeParams) -> Path | None:
    if params.workspace_folders:
        return uri_to_path(params.workspace_folders[0].uri)
    if params.root_uri:
        return uri_to_path(params.root_uri)
    if params.root_path:
        return Path(params.root_path)
    return None


def register(server: GreenpatchServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: GreenpatchServer, params: types.InitializeParams) -> None:
        ls.event_loop = asyncio.get_running_loop()
        ls.apply_settings(params.initialization_options)
        root = _root(params)
        if root is not None and root.is_dir():
            ls.open_workspace(root.resolve())
            index = ls.index
            assert index is not None
            ls.index_ready = asyncio.ensure_future(asyncio.to_thread(index.scan))

    @server.feature(types.INITIALIZED)
    async def initialized(ls: GreenpatchServer, params: types.InitializedParams) -> None:
        ls.status("starting", "indexing workspace")
        if ls.index_ready is not None:
            stats = await asyncio.shield(ls.index_ready)
            ls.log(f"indexed {stats.files} files, {stats.symbols} symbols in {stats.seconds:.2f} s")
        ls.status("ready", "syntax features ready")
        if not ls.settings.trusted:
            ls.log("workspace not trusted: greenpatch will not run its tests or repair it")

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: GreenpatchServer, params: types.DidChangeConfigurationParams) -> None:
        ls.apply_settings(params.settings)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: GreenpatchServer, *args: object) -> None:
        ls.shutdown_services()
