"""Streaming Django responses: the body is produced in the request's PostHog context.

Private to :mod:`posthog_otel.instrumentors.django`. :func:`finish_response` leaves the
request's context when the view returns, or, for a streaming body (sync or async), when the
body has been produced.

Usage::

    from ._django_streaming import finish_response

    response = self.get_response(request)
    return finish_response(context, response)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from posthog_otel import context as contexts

from ._request import RequestContext, exit_request

__all__ = ["finish_response"]

_logger = logging.getLogger("posthog.otel")


def _scoped_chunks(chunks: Iterable[Any], context: RequestContext) -> Iterator[Any]:
    iterator = iter(chunks)
    try:
        while True:
            token, attached = contexts.attach_scope(context.scope)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                contexts.detach_scope(token, attached)
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        try:
            if close is not None:
                close()
        finally:
            exit_request(context)


async def _ascoped_chunks(chunks: AsyncIterator[Any], context: RequestContext) -> Any:
    iterator = chunks.__aiter__()
    try:
        while True:
            token, attached = contexts.attach_scope(context.scope)
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            finally:
                contexts.detach_scope(token, attached)
            yield chunk
    finally:
        aclose = getattr(iterator, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            exit_request(context)


def finish_response(context: RequestContext | None, response: Any) -> Any:
    """Leave the request's context, keeping it for a streaming body until the body ends."""
    if context is None:
        return response
    try:
        if (
            getattr(response, "streaming", False)
            and getattr(response, "file_to_stream", None) is None
        ):
            context.detach()
            if getattr(response, "is_async", False):
                response.streaming_content = _ascoped_chunks(response.streaming_content, context)
            else:
                response.streaming_content = _scoped_chunks(response.streaming_content, context)
            return response
    except Exception:
        _logger.debug("posthog-otel could not wrap a streaming response", exc_info=True)
    exit_request(context)
    return response
