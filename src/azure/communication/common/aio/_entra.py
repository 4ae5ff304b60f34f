"""The asyncio flavour of the Entra token exchange (see :mod:`azure.communication.common._entra`)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessTokenInfo
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.policies import AsyncRetryPolicy

from .._entra import ExchangerBase, build_policies, parse_exchange_response

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.pipeline.transport import AsyncHttpTransport
    from azure.core.rest import AsyncHttpResponse, HttpRequest

__all__ = ["AsyncEntraTokenExchanger"]


class AsyncEntraTokenExchanger(ExchangerBase):
    """Exchanges an Entra ID token for an ACS user access token, for the asyncio credential's Entra mode.

    Each call awaits ``token_credential.get_token`` (so a changed Entra token is exchanged anew) and posts
    the token to the exchange endpoint chosen by the scopes. Nothing is sent at construction.

    Without a ``transport`` argument each exchange runs on its own ``AioHttpTransport``, opened and closed
    around the request: an exchange happens about once per token lifetime, so a kept-alive connection
    saves nothing, and a session that outlives its event loop (repeated ``asyncio.run``) would fail.
    A ``transport`` passed in is kept, reused and closed by :meth:`close`.

    Args:
        resource_endpoint: The Communication Services resource, e.g.
            ``https://<resource>.communication.azure.com``, with no path beyond ``/`` (http is accepted,
            e.g. for a local emulator).
        token_credential: An azure-core ``AsyncTokenCredential`` for the Entra user.
        scopes: As for :class:`azure.communication.common._entra.EntraTokenExchanger`.
        **pipeline_kwargs: azure-core pipeline options: ``transport``, ``retry_total``,
            ``retry_backoff_factor``, ``headers``, ``user_agent`` and the like.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: The endpoint or the scopes are not valid.
    """

    def __init__(
        self,
        resource_endpoint: str,
        token_credential: AsyncTokenCredential,
        scopes: Sequence[str] | None = None,
        **pipeline_kwargs: Any,
    ) -> None:
        self._kwargs = self._setup(resource_endpoint, token_credential, scopes, pipeline_kwargs, "AsyncTokenCredential")
        self._credential = token_credential
        transport: AsyncHttpTransport[Any, Any] | None = self._kwargs.pop("transport", None)
        self._transport = transport
        self._pipeline: AsyncPipeline[HttpRequest, AsyncHttpResponse] | None = None
        # The event loop the caller's transport last ran on (its session belongs to that loop).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pipeline_closed = False
        if transport is not None:
            self._pipeline = self._new_pipeline(transport)

    def _new_pipeline(self, transport: AsyncHttpTransport[Any, Any]) -> AsyncPipeline[HttpRequest, AsyncHttpResponse]:
        # Fresh policies each time: a pipeline links its HTTP policies together, so they are not shared.
        policies = build_policies(AsyncRetryPolicy(**self._kwargs), self._kwargs)
        return AsyncPipeline(transport, policies)

    async def __call__(self) -> AccessTokenInfo:
        """Get an Entra token and exchange it for an ACS token.

        Returns:
            The ACS token and its expiry.

        Raises:
            RuntimeError: The exchanger is closed.
            ClientAuthenticationError: The service refused the Entra token (401/403).
            HttpResponseError: Any other failure of the exchange.
            Exception: Whatever ``token_credential.get_token`` raises, unchanged.
        """
        if self._closed:
            raise RuntimeError("AsyncEntraTokenExchanger is closed.")
        # get_token_info first, as azure-core's async bearer policy does (AsyncSupportsTokenInfo).
        get_token_info = getattr(self._credential, "get_token_info", None)
        if callable(get_token_info):
            pending = get_token_info(*self._target.scopes)
        else:
            pending = self._credential.get_token(*self._target.scopes)
        if not inspect.isawaitable(pending):
            raise TypeError(
                "token_credential.get_token_info() / get_token() must be a coroutine function (an azure-core "
                "AsyncTokenCredential); use the sync CommunicationTokenCredential for a sync credential."
            )
        entra_token = await pending
        request = self._target.build_request(entra_token)
        if self._pipeline is not None:
            self._follow_loop()
            response = await self._pipeline.run(request)
        else:
            # Imported here: the core package must not need aiohttp unless this default is used.
            from azure.core.pipeline.transport import AioHttpTransport

            async with self._new_pipeline(AioHttpTransport(**self._kwargs)) as pipeline:
                response = await pipeline.run(request)
        return parse_exchange_response(response.http_response)

    def _follow_loop(self) -> None:
        """Reopen the caller's transport on a new event loop (repeated ``asyncio.run``, per-test loops).

        An aiohttp session belongs to the loop it was opened on and fails on any other ("Event loop is
        closed"); a transport that owns its session is given a fresh one, opened on first use there.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # trio: azure-core's trio transport has no loop-bound session
            loop = None
        previous, self._loop = self._loop, loop
        if previous is None or previous is loop or loop is None:
            return
        transport = self._transport
        # azure-core's AioHttpTransport keeps its session in `session` and whether it created it in
        # `_session_owner`; `_has_been_opened` makes open() refuse a transport it thinks was closed.
        # tests/entra pins these attributes.
        if getattr(transport, "_session_owner", False) and getattr(transport, "session", None) is not None:
            transport.session = None  # type: ignore[union-attr]
            with contextlib.suppress(AttributeError):
                transport._has_been_opened = False  # type: ignore[union-attr]

    async def close(self) -> None:
        """Close the pipeline and a transport passed in; later calls raise ``RuntimeError``. Idempotent,
        also after a ``close()`` that was itself cancelled."""
        self._closed = True
        if self._pipeline is not None and not self._pipeline_closed:
            await self._pipeline.__aexit__()
            self._pipeline_closed = True

    async def __aenter__(self) -> AsyncEntraTokenExchanger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
