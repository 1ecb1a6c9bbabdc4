"""Image names: the store's ``index.json``, which makes the store's root an OCI image layout.

A name is a full image reference (``localhost:5000/team/app:1.0``, ``app:latest``,
``app@sha256:...``) bound to the descriptor of a manifest or index held by the store. The names
are kept where every OCI tool looks for them: in ``index.json`` next to ``blobs/``, with
``oci-layout`` beside it (see ``cargohold.layout``).

Each name is one entry of the index's ``manifests``, annotated twice:

* ``org.opencontainers.image.ref.name``: the full name, exactly as given. The OCI grammar of
  ``ref.name`` (components of ``[A-Za-z0-9]`` joined by ``-._:@+`` or ``--``, separated by
  ``/``) admits any full image reference, so a full name is always a valid ref.name; a tag
  alone (what the image spec suggests and ``skopeo copy ... oci:DIR:TAG`` writes) would make
  ``team/app:1.0`` and ``other:1.0`` collide in one index. So
  ``skopeo inspect oci:<store dir>:localhost:5000/team/app:1.0`` finds the image (skopeo
  splits the path at the first colon and takes the rest as the ref.name).
* ``io.containerd.image.name``: the same full name, which containerd's importer prefers over
  ``ref.name`` when both are present.

Entries written by other tools are kept: an entry's name is its ``io.containerd.image.name``,
else its ``ref.name``; entries with neither are left untouched and not listed.

Changes are read-modify-write of ``index.json`` with a precondition (create-only when it does
not exist yet, if-match its etag otherwise), retried with jittered backoff when another writer
got there first, so concurrent writers of different names never lose one another's names.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .digests import parse_digest
from .drivers.base import CREATE_ONLY, Driver, IfMatch
from .errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from .layout import Layout
from .types import Descriptor

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "INDEX_MEDIA_TYPE",
    "ImageName",
    "NameListing",
    "NameStore",
    "descriptor_from_json",
    "descriptor_to_json",
    "index_entry",
    "validate_name",
]

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
OCI_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'

MAX_NAME_LENGTH = 255
"""distribution's limit on the repository part of a name."""

_ATTEMPTS = 24
_BACKOFF_FIRST = 0.01
_BACKOFF_MAX = 0.5

# distribution's reference grammar (github.com/distribution/reference, regexp.go).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)


def validate_name(name: object) -> str:
    """Check ``name`` against distribution's reference grammar; return it unchanged.

    ``[host[:port]/]path[:tag][@digest]``, path components lowercase; the repository part at
    most 255 characters. InvalidArgumentError otherwise.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"an image name must be a string, got {type(name).__name__}")
    match = _REFERENCE.fullmatch(name)
    if match is None:
        raise InvalidArgumentError(
            f"invalid image name {name!r}: expected [host[:port]/]path[:tag][@digest] "
            "with lowercase path components"
        )
    if len(match["name"]) > MAX_NAME_LENGTH:
        raise InvalidArgumentError(
            f"invalid image name {name!r}: the repository is longer than {MAX_NAME_LENGTH}"
        )
    if match["digest"] is not None:
        parse_digest(match["digest"])  # an algorithm the store knows, a hex of its length
    return name


@dataclass(frozen=True)
class ImageName:
    """One name of the store and the manifest or index it points at."""

    name: str
    """A full reference, e.g. ``localhost:5000/team/app:1.0`` or ``app:latest``."""
    target: Descriptor


@dataclass(frozen=True)
class NameListing:
    """Every name, and whether the store has an ``index.json`` at all (``NameStore.listing``)."""

    names: list[ImageName]
    index_exists: bool


def descriptor_to_json(desc: Descriptor) -> dict[str, Any]:
    """An OCI descriptor as JSON (``mediaType``, ``digest``, ``size``, ``annotations``)."""
    out: dict[str, Any] = {}
    if desc.media_type:
        out["mediaType"] = desc.media_type
    out["digest"] = desc.digest
    out["size"] = desc.size
    if desc.annotations:
        out["annotations"] = dict(desc.annotations)
    return out


def descriptor_from_json(raw: object, where: str = "descriptor") -> Descriptor:
    """A Descriptor from OCI JSON; InvalidArgumentError when it is not one."""
    if not isinstance(raw, dict):
        raise InvalidArgumentError(f"{where}: expected an object, got {type(raw).__name__}")
    media_type = raw.get("mediaType", "")
    digest = raw.get("digest")
    size = raw.get("size")
    annotations = raw.get("annotations")
    if not isinstance(media_type, str):
        raise InvalidArgumentError(f"{where}: mediaType is not a string")
    if not isinstance(digest, str):
        raise InvalidArgumentError(f"{where}: digest is missing or not a string")
    parse_digest(digest)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgumentError(f"{where}: size is missing or not a non-negative integer")
    if annotations is not None and (
        not isinstance(annotations, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
    ):
        raise InvalidArgumentError(f"{where}: annotations must map strings to strings")
    return Descriptor(media_type, digest, size, dict(annotations) if annotations else None)


def _empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}


def _entry_name(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return None
    annotations = entry.get("annotations")
    if not isinstance(annotations, dict):
        return None
    for key in (ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME):
        value = annotations.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def index_entry(name: str, target: Descriptor) -> dict[str, Any]:
    """The ``index.json`` entry naming ``target`` ``name`` (both name annotations set; the
    target's other annotations kept)."""
    annotations = {
        k: v
        for k, v in (target.annotations or {}).items()
        if k not in (ANNOTATION_REF_NAME, ANNOTATION_IMAGE_NAME)
    }
    annotations[ANNOTATION_REF_NAME] = name
    annotations[ANNOTATION_IMAGE_NAME] = name
    entry = descriptor_to_json(Descriptor(target.media_type, target.digest, target.size))
    entry["annotations"] = dict(sorted(annotations.items()))
    return entry


def _image_name(name: str, entry: dict[str, Any]) -> ImageName:
    return ImageName(name, descriptor_from_json(entry, f"index.json entry {name!r}"))


class NameStore:
    """The image names of one store, kept in its ``index.json``; thread- and process-safe."""

    def __init__(self, driver: Driver, layout: Layout) -> None:
        self._driver = driver
        self._layout = layout
        self.sleep: Callable[[float], None] = time.sleep

    # -- reading -------------------------------------------------------------------------

    def _read(self) -> tuple[dict[str, Any], str | None]:
        """The index and the etag of exactly the bytes read (None: there is no index yet),
        for a read-modify-write.

        A get does not return an etag, so the object is headed before and after it; equal
        etags mean no write came in between, and the bytes are the ones that etag names.
        """
        key = self._layout.index_key
        for _ in range(_ATTEMPTS):
            try:
                before = self._driver.head(key).etag
            except NotFoundError:
                # No index: the write that follows is create-only, so one made meanwhile
                # fails it and the read-modify-write starts over.
                return _empty_index(), None
            try:
                data = self._driver.get(key)
                after = self._driver.head(key).etag
            except NotFoundError:
                continue  # deleted meanwhile: read again
            if before == after:
                return self._decode(data), after
        raise UnavailableError(f"{key} kept changing while it was read; retry")

    def _snapshot(self) -> dict[str, Any] | None:
        """The index as one get sees it (one version's bytes, whole), None if there is none:
        what a reader needs, one request where ``_read``'s etag costs three."""
        try:
            data = self._driver.get(self._layout.index_key)
        except NotFoundError:
            return None
        return self._decode(data)

    def _decode(self, data: bytes) -> dict[str, Any]:
        try:
            index = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FailedPreconditionError(
                f"{self._layout.index_key} is not valid JSON: {exc}"
            ) from exc
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise FailedPreconditionError(f"{self._layout.index_key} is not an OCI image index")
        index.setdefault("manifests", [])
        return index

    def _named(self, index: Mapping[str, Any]) -> dict[str, ImageName]:
        found: dict[str, ImageName] = {}
        for entry in index["manifests"]:
            name = _entry_name(entry)
            if name is not None and name not in found:
                try:
                    found[name] = _image_name(name, entry)
                except InvalidArgumentError:
                    continue  # another tool's malformed entry: kept, not listed
        return found

    def list(self) -> list[ImageName]:
        """Every name, sorted by name."""
        return self.listing().names

    def listing(self) -> NameListing:
        """Every name, sorted by name, and whether there is an ``index.json`` (one get)."""
        index = self._snapshot()
        named = self._named(index or _empty_index()).values()
        return NameListing(sorted(named, key=lambda n: n.name), index is not None)

    def get(self, name: str) -> ImageName:
        """The image a name points at; NotFoundError when there is no such name."""
        found = self._named(self._snapshot() or _empty_index()).get(name)
        if found is None:
            raise NotFoundError(f"image {name!r} not found")
        return found

    # -- writing -------------------------------------------------------------------------

    def set(self, name: str, target: Descriptor) -> ImageName:
        """Point ``name`` at ``target`` (a manifest or index the store holds)."""
        return self.set_many({name: target})[0]

    def set_many(
        self,
        names: Mapping[str, Descriptor],
        *,
        known: Mapping[str, int] | None = None,
        new_index: bool = False,
    ) -> builtins.list[ImageName]:
        """Point every name at its target in one conditional write of ``index.json``.

        InvalidArgumentError for a bad name or descriptor, FailedPreconditionError when the
        store lacks a target's blob; nothing is written then. ``known``: digest -> size of
        blobs the caller has just seen in the store (listed or committed them): targets among
        them are checked against that size instead of a head each. ``new_index``: the caller
        found no ``index.json`` (``listing``) and has written the layout marker
        (``ensure_layout``): the first attempt creates the index without reading it first;
        if one was created meanwhile, that attempt fails and the usual read-modify-write
        follows.
        """
        wanted: dict[str, Descriptor] = {}
        for name, target in names.items():
            validate_name(name)
            if not isinstance(target, Descriptor):
                raise InvalidArgumentError(
                    f"target of {name!r} must be a Descriptor, got {type(target).__name__}"
                )
            descriptor_from_json(descriptor_to_json(target), f"target of {name!r}")
            wanted[name] = target
        for digest in sorted({t.digest for t in wanted.values()}):
            self._require_blob(digest, wanted, (known or {}).get(digest))
        entries = {name: index_entry(name, target) for name, target in wanted.items()}

        def change(index: dict[str, Any]) -> None:
            kept = [e for e in index["manifests"] if _entry_name(e) not in entries]
            index["manifests"] = kept + [entries[name] for name in sorted(entries)]

        self._modify(change, new_index=new_index)
        return [_image_name(name, entries[name]) for name in wanted]

    def _require_blob(
        self, digest: str, wanted: Mapping[str, Descriptor], size: int | None
    ) -> None:
        try:
            if size is None:
                size = self._driver.head(self._layout.blob_key(parse_digest(digest))).size
        except NotFoundError:
            which = sorted(n for n, t in wanted.items() if t.digest == digest)
            raise FailedPreconditionError(
                f"cannot name {', '.join(which)}: content {digest} is not in the store"
            ) from None
        for name, target in wanted.items():
            if target.digest == digest and target.size != size:
                raise InvalidArgumentError(
                    f"target of {name!r} says {target.size} bytes, content {digest} has {size}"
                )

    def remove(self, *names: str) -> builtins.list[str]:
        """Remove names; NotFoundError (and nothing removed) if any of them does not exist."""
        gone = set(names)

        def change(index: dict[str, Any]) -> None:
            present = {_entry_name(e) for e in index["manifests"]}
            missing = sorted(gone - present)
            if missing:
                raise NotFoundError(f"image {', '.join(map(repr, missing))} not found")
            index["manifests"] = [e for e in index["manifests"] if _entry_name(e) not in gone]

        if gone:
            self._modify(change)
        return list(dict.fromkeys(names))

    def _modify(self, change: Callable[[dict[str, Any]], None], *, new_index: bool = False) -> None:
        """Read, change and write back ``index.json`` under a precondition, until it holds.
        ``new_index``: see ``set_many``."""
        key = self._layout.index_key
        delay = _BACKOFF_FIRST
        for attempt in range(_ATTEMPTS):
            marked = new_index and attempt == 0
            index, etag = (_empty_index(), None) if marked else self._read()
            change(index)
            index["schemaVersion"] = 2
            index["mediaType"] = INDEX_MEDIA_TYPE
            data = json.dumps(index, indent=2, sort_keys=False).encode() + b"\n"
            try:
                if etag is None:
                    if not marked:
                        self.ensure_layout()
                    self._driver.put(key, data, precondition=CREATE_ONLY)
                else:
                    self._driver.put(key, data, precondition=IfMatch(etag))
            except (AlreadyExistsError, FailedPreconditionError):
                self.sleep(random.uniform(0, delay))
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            return
        raise UnavailableError(f"{key} kept changing under concurrent writers; retry")

    def ensure_layout(self) -> None:
        """Write the store root's ``oci-layout`` marker unless it is there (create-only)."""
        with contextlib.suppress(AlreadyExistsError):
            self._driver.put(self._layout.oci_layout_key, OCI_LAYOUT, precondition=CREATE_ONLY)
