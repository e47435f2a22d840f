"""Exceptions to PostHog's ``$exception_list``: live objects and stack-trace text.

What lives here, one job per module:

* :mod:`.marks` - ``mark_captured`` / ``is_captured``: report each exception object once;
* :mod:`.frames` - ``FrameOptions`` and the frame dicts (paths, modules, "in app", source);
* :mod:`.entries` - exception trees and their flattening into ``$exception_list`` entries;
* :mod:`.live` - ``exception_list``: walk a live exception (or ``sys.exc_info()`` tuple), its
  causes and group members;
* :mod:`.text` - ``exception_list_from_stacktrace``: stack-trace text of any language;
* :mod:`.python_text`, :mod:`.qualnames` - Python traceback text and qualified names;
* :mod:`.other_languages` - Java, Node.js and Go stack traces; :mod:`.foreign_in_app` - which
  of their frames are in app;
* :mod:`.handled` - whether an exception recorded on a span or a log record was handled.

The client reports live exceptions, the span mapping and the OTLP bridge read stack-trace
text, and the instrumentors check marks.  Modules here import only the standard library and
each other (at most the lowest layer: ``posthog_otel.version`` / ``config``); never context,
delivery, client, spans or anything above.

Usage::

    from posthog_otel.errors import FrameOptions, exception_list, mark_captured

    options = FrameOptions(project_root=os.getcwd(), in_app_modules=("myapp",))
    try:
        charge(order)
    except PaymentError as exc:
        if mark_captured(exc):
            properties = {"$exception_list": exception_list(exc, options=options)}
"""

from __future__ import annotations

from .frames import FrameOptions
from .handled import log_exception_handled, span_exception_handled
from .live import exc_info_of, exception_list
from .marks import is_captured, mark_captured
from .text import exception_list_from_stacktrace

__all__ = [
    "FrameOptions",
    "exc_info_of",
    "exception_list",
    "exception_list_from_stacktrace",
    "is_captured",
    "log_exception_handled",
    "mark_captured",
    "span_exception_handled",
]
