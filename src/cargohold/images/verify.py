"""Check a store: every blob hashes to its digest, every manifest and index refers only to
blobs the store holds, every image name points at a blob the store holds.

``verify(store)`` lists the store once, then re-hashes every blob (or only ``digests``),
streaming, ``concurrency`` at a time. Blobs small enough to be a manifest or an index are
looked at as they pass: a JSON object whose ``mediaType`` is a graph type (or, without one,
whose shape is an index's or a manifest's) is a graph node, and so is a name's target with a
graph media type. Each node is then read again (they are small) and its children looked up in
the listing. Every problem found is a ``Problem(digest, kind, detail)``; kinds:

* ``corrupt``: the stored bytes do not hash to the digest (or are cut short);
* ``missing``: a digest asked for is not in the store;
* ``missing-child``: a manifest or index refers to a blob the store does not hold;
* ``dangling-name``: an image name points at a blob the store does not hold;
* ``malformed``: a manifest or index whose JSON is not what its media type says.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..blob_reader import READ_CHUNK, open_blob
from ..digests import parse_digest
from ..errors import DataLossError, InvalidArgumentError, NotFoundError
from ..store import Store
from ..types import Descriptor
from . import graph

__all__ = ["CORRUPT", "DANGLING_NAME", "MALFORMED", "MISSING", "MISSING_CHILD", "Problem"]
__all__ += ["VerifyProgress", "VerifyReport", "sniff_media_type", "verify"]

CORRUPT = "corrupt"
MISSING = "missing"
MISSING_CHILD = "missing-child"
DANGLING_NAME = "dangling-name"
MALFORMED = "malformed"

_SNIFF_BYTES = 4 * 1024 * 1024
"""Blobs up to this size are looked at for a manifest's or an index's JSON."""
_WAIT_SLICE = 0.5


@dataclass(frozen=True)
class Problem:
    """One thing wrong: the blob it is about, its kind (see the module) and what exactly."""

    digest: str
    kind: str
    detail: str


@dataclass(frozen=True)
class VerifyProgress:
    """How far a check is: blobs and bytes re-hashed so far, of all to re-hash."""

    blobs_done: int
    blobs_total: int
    bytes_done: int
    bytes_total: int


@dataclass
class VerifyReport:
    """What ``verify`` checked and found; ``ok`` when ``problems`` is empty."""

    blobs_checked: int = 0
    bytes_checked: int = 0
    nodes_checked: int = 0
    names_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "ok": self.ok,
            "blobs_checked": self.blobs_checked,
            "bytes_checked": self.bytes_checked,
            "nodes_checked": self.nodes_checked,
            "names_checked": self.names_checked,
            "problems": [
                {"digest": p.digest, "kind": p.kind, "detail": p.detail} for p in self.problems
            ],
        }


def sniff_media_type(data: bytes) -> str:
    """The graph media type a small blob declares (or, lacking ``mediaType``, has the shape
    of), or ``""`` if it is not a manifest or an index."""
    if data.lstrip()[:1] != b"{":
        return ""
    declared = graph.media_type_of("", data)
    if declared:
        return declared
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(parsed, dict):
        return ""
    if "mediaType" in parsed or parsed.get("schemaVersion") != 2:
        return ""
    if isinstance(parsed.get("manifests"), list):
        return graph.OCI_INDEX
    if isinstance(parsed.get("layers"), list) and isinstance(parsed.get("config"), dict):
        return graph.OCI_MANIFEST
    return ""


class _Hashing:
    """Re-hashes blobs on a pool; records problems and the graph nodes seen."""

    def __init__(self, total: int, nbytes: int, progress: Callable[[VerifyProgress], None] | None):
        self._lock = threading.Lock()
        self._progress = progress
        self._total, self._nbytes = total, nbytes
        self.done = 0
        self.bytes_done = 0
        self.problems: list[Problem] = []
        self.nodes: dict[str, str] = {}

    def check(self, store: Store, digest: str, size: int) -> None:
        media_type = ""
        try:
            with open_blob(store, digest) as reader:
                kept: list[bytes] | None = [] if size <= _SNIFF_BYTES else None
                while chunk := reader.read(READ_CHUNK):
                    if kept is not None:
                        kept.append(chunk)
                    self._advance(0, len(chunk))
            if kept is not None:
                media_type = sniff_media_type(b"".join(kept))
            problem = None
        except DataLossError as exc:
            problem = Problem(digest, CORRUPT, str(exc))
        except NotFoundError:
            problem = Problem(digest, MISSING, "not in the store (removed while checked?)")
        with self._lock:
            if problem is not None:
                self.problems.append(problem)
            elif media_type:
                self.nodes[digest] = media_type
        self._advance(1, 0)

    def _advance(self, blobs: int, nbytes: int) -> None:
        with self._lock:
            self.done += blobs
            self.bytes_done += nbytes
            snapshot = VerifyProgress(self.done, self._total, self.bytes_done, self._nbytes)
        if self._progress is not None:
            self._progress(snapshot)


def _run(pool: ThreadPoolExecutor, jobs: Iterable[Callable[[], None]]) -> None:
    """Run ``jobs`` on ``pool``; the first error (or an interruption) cancels the rest."""
    pending: set[Future[None]] = {pool.submit(job) for job in jobs}
    try:
        while pending:
            finished, pending = wait(pending, timeout=_WAIT_SLICE, return_when=FIRST_EXCEPTION)
            for future in finished:
                future.result()
    except BaseException:
        for future in pending:
            future.cancel()
        raise


def verify(
    store: Store,
    digests: Sequence[str] | None = None,
    *,
    concurrency: int = 4,
    progress: Callable[[VerifyProgress], None] | None = None,
) -> VerifyReport:
    """Check ``store`` (every blob and name when ``digests`` is None, else those blobs only).

    Returns a report listing every problem found; raises only for bad arguments or a failure
    of the store itself (a service error), never for what it was asked to find.
    """
    if concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be at least 1, got {concurrency}")
    wanted = None if digests is None else list(dict.fromkeys(str(parse_digest(d)) for d in digests))
    present = dict(store.list_blobs())
    report = VerifyReport()
    if wanted is None:
        todo = dict(present)
    else:
        todo = {d: present[d] for d in wanted if d in present}
        report.problems.extend(
            Problem(d, MISSING, "not in the store") for d in wanted if d not in present
        )
    hashing = _Hashing(len(todo), sum(todo.values()), progress)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cargohold-verify")
    try:
        ordered = sorted(todo.items(), key=lambda item: -item[1])  # long ones start first
        _run(pool, (_bound(hashing.check, store, d, size) for d, size in ordered))
        report.blobs_checked = len(todo)
        report.bytes_checked = sum(todo.values())
        report.problems.extend(hashing.problems)
        corrupt = {p.digest for p in hashing.problems}
        nodes = {d: t for d, t in hashing.nodes.items() if d not in corrupt}
        if wanted is None:
            _check_names(store, present, corrupt, nodes, report)
        _check_nodes(store, present, corrupt, nodes, report, pool)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    report.problems.sort(key=lambda p: (p.kind, p.digest, p.detail))
    return report


def _bound(
    check: Callable[[Store, str, int], None], store: Store, d: str, n: int
) -> Callable[[], None]:
    return lambda: check(store, d, n)


def _check_names(
    store: Store,
    present: dict[str, int],
    corrupt: set[str],
    nodes: dict[str, str],
    report: VerifyReport,
) -> None:
    for item in store.names.list():
        report.names_checked += 1
        target = item.target
        if target.digest not in present:
            report.problems.append(
                Problem(target.digest, DANGLING_NAME, f"the name {item.name!r} points at it")
            )
        elif graph.is_graph_type(target.media_type) and target.digest not in corrupt:
            nodes.setdefault(target.digest, target.media_type)


class _Nodes:
    """Reads nodes and looks their children up in the listing; children that are nodes
    themselves (known by their descriptor's media type) are gathered for the next round."""

    def __init__(self, store: Store, present: dict[str, int], corrupt: set[str]) -> None:
        self._store, self._present, self._corrupt = store, present, corrupt
        self._lock = threading.Lock()
        self.seen: set[str] = set()
        self.problems: list[Problem] = []
        self.following: dict[str, str] = {}

    def look(self, digest: str, media_type: str) -> None:
        try:
            data = graph.read_node(self._store, Descriptor(media_type, digest))
            kids = graph.children(media_type, data)
        except InvalidArgumentError as exc:
            with self._lock:
                self.problems.append(Problem(digest, MALFORMED, str(exc)))
            return
        with self._lock:
            for kid in kids:
                if kid.digest not in self._present:
                    kind = kid.media_type or "no media type"
                    detail = (
                        f"{media_type} refers to {kid.digest} ({kind}), "
                        "which the store does not hold"
                    )
                    self.problems.append(Problem(digest, MISSING_CHILD, detail))
                elif (
                    graph.is_graph_type(kid.media_type)
                    and kid.digest not in self.seen
                    and kid.digest not in self._corrupt
                ):
                    self.following.setdefault(kid.digest, kid.media_type)


def _check_nodes(
    store: Store,
    present: dict[str, int],
    corrupt: set[str],
    nodes: dict[str, str],
    report: VerifyReport,
    pool: ThreadPoolExecutor,
) -> None:
    """Check every node's children, in rounds (a node found through a parent joins the next)."""
    checker = _Nodes(store, present, corrupt)
    round_ = dict(nodes)
    while round_:
        checker.seen.update(round_)
        checker.following = {}
        _run(pool, (_look(checker.look, d, t) for d, t in round_.items()))
        report.nodes_checked += len(round_)
        round_ = checker.following
    report.problems.extend(checker.problems)


def _look(look: Callable[[str, str], None], digest: str, media_type: str) -> Callable[[], None]:
    return lambda: look(digest, media_type)
