"""Wicket's Python SDK: an admission plugin is one ``review`` function.

The same shapes as the Rust SDK (``plugins/sdk``), over the same WIT contract
(``wit/0.2``)::

    from wicket_sdk import Review, Verdict, plugin

    def review(review: Review) -> Verdict:
        if review.object is None:
            return Verdict.allow()  # a delete: nothing to check
        if "owner" in review.object.labels:
            return Verdict.allow()
        return Verdict.deny("pods need an 'owner' label")

    Plugin = plugin(review)

Objects stay in Wicket: a :class:`View` reads only the parts it is asked for,
through the host. Build with ``scripts/build-python-plugin DIR OUT.wasm``.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log as _log
from wit_world.imports import types

__all__ = [
    "Container",
    "Patch",
    "PluginError",
    "Review",
    "Verdict",
    "View",
    "debug",
    "error",
    "info",
    "plugin",
    "pointer",
    "warn",
]


class PluginError(Exception):
    """The plugin cannot judge this review (its own failure, not a denial):
    Wicket applies the manifest's failure policy."""


def pointer(*segments: str) -> str:
    """A JSON pointer (RFC 6901) to ``segments``, escaped: ``pointer("metadata",
    "labels", "app.kubernetes.io/name")``."""
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)


class View:
    """A lazy, read-only view of one JSON document held by Wicket (the object,
    the old object, the options or the settings), at ``at`` (a JSON pointer).
    Each read crosses into the host once and parses only what it returns."""

    def __init__(self, document: types.Document, at: str = "") -> None:
        self._document = document
        self._at = at

    def get(self, path: str = "", default: Any = None) -> Any:
        """The JSON value at ``path`` (a pointer relative to this view), parsed;
        ``default`` when it is absent."""
        text = self._document.get(self._at + path)
        return default if text is None else json.loads(text)

    def has(self, path: str) -> bool:
        """Whether ``path`` exists."""
        return self._document.part(self._at + path, 0) is not None

    def at(self, path: str) -> "View":
        """The view of the value at ``path``."""
        return View(self._document, self._at + path)

    def keys(self, path: str = "") -> list[str]:
        """The member names of the object at ``path`` (empty if it is not one)."""
        return self._document.keys(self._at + path) or []

    def len(self, path: str = "") -> int:
        """The length of the array or object at ``path`` (0 if absent)."""
        return self._document.len(self._at + path) or 0

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return self.get("/metadata/name", "")

    @property
    def namespace(self) -> str:
        """``metadata.namespace``."""
        return self.get("/metadata/namespace", "")

    @property
    def labels(self) -> dict[str, str]:
        """``metadata.labels`` (empty when there are none)."""
        return self.get("/metadata/labels") or {}

    @property
    def annotations(self) -> dict[str, str]:
        """``metadata.annotations`` (empty when there are none)."""
        return self.get("/metadata/annotations") or {}

    def containers(self, spec: str = "/spec") -> Iterator["Container"]:
        """Every container, init container and ephemeral container of the pod
        spec at ``spec`` (``/spec/template/spec`` for a Deployment), in order."""
        for field in ("initContainers", "containers", "ephemeralContainers"):
            list_path = f"{spec}/{field}"
            for index in range(self.len(list_path)):
                yield Container(self.at(f"{list_path}/{index}"), f"{self._at}{list_path}/{index}", field)


class Container(View):
    """One container of a pod spec: its fields are read on demand."""

    def __init__(self, view: View, path: str, field: str) -> None:
        super().__init__(view._document, view._at)
        #: Its JSON pointer in the object, for a patch.
        self.path = path
        #: ``containers``, ``initContainers`` or ``ephemeralContainers``.
        self.field = field

    @property
    def name(self) -> str:
        return self.get("/name", "")

    @property
    def image(self) -> str:
        return self.get("/image", "")


class Review:
    """One admission request: its attributes, and views of its documents."""

    def __init__(self, request: types.Request, documents: types.Documents) -> None:
        self.request = request
        #: The object being admitted (``None`` for a delete).
        self.object = View(documents.object) if documents.object is not None else None
        #: The stored object (updates and deletes).
        self.old_object = View(documents.old_object) if documents.old_object is not None else None
        #: The operation's options (``CreateOptions``, ...).
        self.options = View(documents.options) if documents.options is not None else None

    @property
    def uid(self) -> str:
        return self.request.uid

    @property
    def operation(self) -> str:
        """``CREATE``, ``UPDATE``, ``DELETE`` or ``CONNECT``."""
        return self.request.operation.name

    @property
    def kind(self) -> str:
        return self.request.kind.kind

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def namespace(self) -> str:
        return self.request.namespace

    @property
    def username(self) -> str:
        return self.request.user_info.username

    @property
    def dry_run(self) -> bool:
        return self.request.dry_run


class Patch:
    """A JSON Patch (RFC 6902) built op by op. Paths are JSON pointers; build
    them with :func:`pointer` when a segment may hold ``/`` or ``~``."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []

    def add(self, path: str, value: Any) -> "Patch":
        self.ops.append({"op": "add", "path": path, "value": value})
        return self

    def replace(self, path: str, value: Any) -> "Patch":
        self.ops.append({"op": "replace", "path": path, "value": value})
        return self

    def remove(self, path: str) -> "Patch":
        self.ops.append({"op": "remove", "path": path})
        return self

    def __bool__(self) -> bool:
        return bool(self.ops)

    def to_json(self) -> str:
        return json.dumps(self.ops, separators=(",", ":"))


class Verdict:
    """What the plugin answers: allow (optionally with a patch) or deny, with
    warnings for the client and audit annotations for the API server's log."""

    def __init__(self, denied: Optional[types.Denial] = None) -> None:
        self._denied = denied
        self._patch: Optional[Patch] = None
        self._warnings: list[str] = []
        self._annotations: list[tuple[str, str]] = []

    @classmethod
    def allow(cls) -> "Verdict":
        return cls()

    @classmethod
    def deny(cls, message: str, code: int = 403) -> "Verdict":
        """Refuses the object with ``message`` (shown to the client) and HTTP
        ``code`` (403 unless told)."""
        return cls(types.Denial(code=code, message=message))

    @classmethod
    def patch(cls, patch: Patch) -> "Verdict":
        """Allows the object changed by ``patch`` (mutating plugins)."""
        verdict = cls()
        verdict._patch = patch
        return verdict

    def warn(self, message: str) -> "Verdict":
        self._warnings.append(message)
        return self

    def annotate(self, key: str, value: str) -> "Verdict":
        self._annotations.append((key, value))
        return self

    def _response(self) -> types.Response:
        mutation = None
        if self._patch:
            mutation = types.Mutation_JsonPatch(self._patch.to_json())
        return types.Response(
            denied=self._denied,
            mutation=mutation,
            warnings=self._warnings,
            audit_annotations=self._annotations,
        )


def _write(level: _log.Level, message: str) -> None:
    _log.log(level, message)


def debug(message: str) -> None:
    _write(_log.Level.DEBUG, message)


def info(message: str) -> None:
    _write(_log.Level.INFO, message)


def warn(message: str) -> None:
    _write(_log.Level.WARN, message)


def error(message: str) -> None:
    _write(_log.Level.ERROR, message)


def plugin(
    review: Callable[..., Verdict],
    validate_settings: Optional[Callable[[Any], None]] = None,
) -> type:
    """The class componentize-py exports as ``Plugin``.

    ``review(review)`` -- or ``review(review, settings)`` when it takes two
    arguments -- returns a :class:`Verdict`; ``settings`` is the manifest's
    ``[settings]`` table as a dict. ``validate_settings(settings)`` runs when
    the plugin is loaded and raises ``ValueError`` to refuse bad settings.
    Raise :class:`PluginError` when the plugin cannot judge; any other
    exception traps, which Wicket also reports as the plugin's failure.
    """
    wants_settings = review.__code__.co_argcount >= 2

    class Plugin(exports.Plugin):
        def validate_settings(self, settings: types.Document) -> None:
            if validate_settings is None:
                return
            try:
                validate_settings(View(settings).get("", {}))
            except ValueError as refusal:
                raise Err(str(refusal))

        def review(self, request: types.Request, documents: types.Documents) -> types.Response:
            this = Review(request, documents)
            try:
                if wants_settings:
                    verdict = review(this, View(documents.settings).get("", {}))
                else:
                    verdict = review(this)
            except PluginError as failure:
                raise Err(types.PluginError(str(failure)))
            return verdict._response()

    return Plugin
