"""``new_context`` as a context manager or decorator, and ``@scoped`` for any callable.

    @scoped()
    def handle(job): ...                 # each call in a new context

    @new_context(fresh=True)
    async def sync_inventory(): ...      # same, starting empty

    @scoped
    async def stream():                   # generators: current only while their body runs
        yield ...

Exceptions leaving a context are announced to
:func:`~posthog_otel.context.observers.on_exit_exception` observers (the client captures them
once) and re-raised.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from typing import Any, TypeVar, cast, overload

from . import observers
from .scope import Scope, attach_scope, current_scope, detach_scope

__all__ = ["new_context", "scoped"]

_F = TypeVar("_F", bound=Callable[..., Any])


class new_context(Scope):
    """``new_context(fresh=False, capture_exceptions=None, client=None)``: a new :class:`Scope`.

    Use it as a context manager (``with new_context() as scope:``) or a decorator. ``fresh=True``
    starts empty instead of inheriting identity, session and tags. ``capture_exceptions``
    (default: the client's ``enable_exception_autocapture``, on unless switched off) captures an
    ``Exception`` leaving the block, then re-raises it; ``client`` is used for that capture.
    """

    __slots__ = ()

    def __call__(self, fn: _F) -> _F:
        """Use ``@new_context(...)`` as a decorator: each call runs in its own context."""
        return scoped(self.fresh, self.capture_exceptions, _client=self.client)(fn)


# -- scoped -------------------------------------------------------------------------------


@overload
def scoped(fresh: _F) -> _F: ...


@overload
def scoped(
    fresh: bool = False,
    capture_exceptions: bool | None = None,
    *,
    _client: Any = None,
) -> Callable[[_F], _F]: ...


def scoped(
    fresh: Any = False,
    capture_exceptions: bool | None = None,
    *,
    _client: Any = None,
) -> Any:
    """Decorator: run each call of the function in a new PostHog context.

    Works on plain functions, coroutine functions, and sync and async generators. For
    generators the context is current only while the generator body runs (each step), never
    in the consumer's code between steps. Use as ``@scoped()``, ``@scoped(fresh=True)`` or
    bare ``@scoped``.
    """
    if callable(fresh):
        return scoped()(fresh)

    def decorate(fn: _F) -> _F:
        def make_scope() -> Scope:
            return new_context(bool(fresh), capture_exceptions, _client, current_scope())

        if inspect.isasyncgenfunction(fn):
            return cast(_F, _wrap_async_generator(fn, make_scope))
        if inspect.isgeneratorfunction(fn):
            return cast(_F, _wrap_generator(fn, make_scope))
        if inspect.iscoroutinefunction(fn):
            return cast(_F, _wrap_coroutine(fn, bool(fresh), capture_exceptions, _client))

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            with new_context(bool(fresh), capture_exceptions, _client):
                return fn(*args, **kwargs)

        return cast(_F, call)

    return decorate


def _wrap_coroutine(
    fn: Callable[..., Coroutine[Any, Any, Any]],
    fresh: bool,
    capture_exceptions: bool | None,
    client: Any,
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> Any:
        with new_context(fresh, capture_exceptions, client):
            return await fn(*args, **kwargs)

    return call


def _wrap_generator(
    fn: Callable[..., Generator[Any, Any, Any]], make_scope: Callable[[], Scope]
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        return _step_generator(fn(*args, **kwargs), make_scope())

    return call


def _step_generator(gen: Generator[Any, Any, Any], scope: Scope) -> Generator[Any, Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        token, attached = attach_scope(scope)
        try:
            item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
        except StopIteration as stop:
            return stop.value
        except BaseException as exc:
            observers.notify_exit_exception(scope, exc)
            raise
        finally:
            detach_scope(token, attached)
        try:
            to_send = yield item
            to_throw = None
        except GeneratorExit:
            token, attached = attach_scope(scope)
            try:
                gen.close()
            finally:
                detach_scope(token, attached)
            raise
        except BaseException as exc:  # thrown in by the consumer: forward it
            to_throw = exc


def _wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], make_scope: Callable[[], Scope]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        return _step_async_generator(fn(*args, **kwargs), make_scope())

    return call


async def _step_async_generator(
    gen: AsyncGenerator[Any, Any], scope: Scope
) -> AsyncGenerator[Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        token, attached = attach_scope(scope)
        try:
            if to_throw is not None:
                item = await gen.athrow(to_throw)
            else:
                item = await gen.asend(to_send)
        except StopAsyncIteration:
            return
        except BaseException as exc:
            observers.notify_exit_exception(scope, exc)
            raise
        finally:
            detach_scope(token, attached)
        try:
            to_send = yield item
            to_throw = None
        except GeneratorExit:
            token, attached = attach_scope(scope)
            try:
                await gen.aclose()
            finally:
                detach_scope(token, attached)
            raise
        except BaseException as exc:
            to_throw = exc
