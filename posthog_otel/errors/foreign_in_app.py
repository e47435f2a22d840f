"""Is a frame of a Node.js, JVM or Go stack trace the application's own code?

PostHog counts a frame without ``in_app`` as application code, so every frame parsed from
another language's stack text gets an explicit answer, by that language's conventions:

* **Node.js**: a frame is in app when its file is a path of the program (absolute, relative,
  a Windows drive path or a ``file://`` URL) outside any ``node_modules`` folder. Node's own
  modules (``node:internal/...``, ``node:events``, older ``internal/...``) and built-in
  frames without a file (``JSON.parse (<anonymous>)``, ``Promise.all (index 0)``,
  ``native``) are not.
* **JVM**: not in app for the JDK and the language runtimes (``java.``, ``javax.``, ``jdk.``,
  ``sun.``, ``com.sun.``, ``kotlin.``, ``scala.``) nor for the OpenTelemetry Java agent's
  instrumentation woven into the app (``io.opentelemetry.javaagent.``); in app otherwise.
* **Go**: not in app for the runtime and the standard library (a package path whose first
  element has no dot, such as ``runtime``, ``net/http``, ``encoding/json``; ``main`` is the
  program) nor for files in the module cache (``/pkg/mod/``, or ``module@version/`` as
  ``go build -trimpath`` writes it) or a ``vendor`` folder; in app otherwise.

Usage::

    from posthog_otel.errors.foreign_in_app import go_in_app, java_in_app, node_in_app

    node_in_app("/srv/app/node_modules/express/lib/router/layer.js")   # False
    java_in_app("java.util.concurrent.FutureTask")                     # False
    go_in_app("main.lookup", "/home/dev/app/main.go")                  # True

Standard library only; string tests, no regular expressions.
"""

from __future__ import annotations

__all__ = ["go_in_app", "java_in_app", "node_in_app"]

_JVM_RUNTIME_PREFIXES = (
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "scala.",
    "io.opentelemetry.javaagent.",
)


def node_in_app(filename: str) -> bool:
    """Whether a Node.js frame's file is the program's own code (see the module docstring)."""
    path = filename.replace("\\", "/")
    if "/node_modules/" in path or path.startswith("node_modules/"):
        return False
    if path.startswith("file://"):
        return True
    is_drive_path = len(path) > 2 and path[1] == ":" and path[2] == "/" and path[0].isalpha()
    return path.startswith(("/", "./", "../")) or is_drive_path


def java_in_app(module: str | None) -> bool:
    """Whether a JVM frame's class (``module``) is outside the JDK and language runtimes."""
    return not (module or "").startswith(_JVM_RUNTIME_PREFIXES)


def go_in_app(function: str, filename: str) -> bool:
    """Whether a Go frame is the program's code: not the runtime, the standard library, the
    module cache nor a vendor folder."""
    path = filename.replace("\\", "/")
    if "/pkg/mod/" in path or "/vendor/" in path or _is_versioned_module_path(path):
        return False
    package = _go_package(function)
    if package == "main":
        return True
    first_element = package.split("/", 1)[0]
    return "." in first_element


def _is_versioned_module_path(path: str) -> bool:
    """``go.opentelemetry.io/otel/sdk@v1.47.0/trace/span.go``: a dependency's file as
    ``-trimpath`` builds name it (a path element ``module@v<digit>...``)."""
    for element in path.split("/"):
        at = element.find("@v")
        if at > 0 and element[at + 2 : at + 3].isdigit():
            return True
    return False


def _go_package(function: str) -> str:
    """The import path of a Go function name such as ``net/http.(*conn).serve``."""
    slash = function.rfind("/")
    dot = function.find(".", slash + 1)
    return function[:dot] if dot > 0 else function
