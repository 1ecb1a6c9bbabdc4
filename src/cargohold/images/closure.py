"""The part of an image graph a copy or a check needs, found over the Store API.

``explore(store, roots, present)`` follows manifests and indexes from ``roots`` (descriptors,
so their media types are known) through ``graph.children``, reading only the blobs whose
media type makes them graph nodes. It records each node's children, the media type each blob
was referred to with, the closure of every root, and the references to blobs the store lacks.
``heights(edges)`` then ranks blobs so that a blob always comes after everything it refers to
(leaves are 0): copying in that order never leaves a manifest whose children are missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..store import Store
from ..types import Descriptor
from . import graph

__all__ = ["Explored", "explore", "heights"]


@dataclass
class Explored:
    """What ``explore`` found.

    ``edges``: the children (digests) of every graph node read. ``media_types``: the media
    type each reached blob was referred to with. ``closures``: for each root digest, every
    digest reachable from it (itself included, absent ones too). ``absent``: reached digests
    the store does not hold, each with the digest of a blob that refers to it ("" for a root).
    """

    edges: dict[str, list[str]] = field(default_factory=dict)
    media_types: dict[str, str] = field(default_factory=dict)
    closures: dict[str, set[str]] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)


def explore(store: Store, roots: Iterable[Descriptor], present: Mapping[str, int]) -> Explored:
    """Follow ``roots`` through every manifest and index ``store`` holds (``present``: the
    store's blobs by digest, from one listing). Each node is read once, however many roots
    share it."""
    found = Explored()
    for root in roots:
        closure: set[str] = set()
        stack: list[tuple[Descriptor, str]] = [(root, "")]
        while stack:
            desc, parent = stack.pop()
            if desc.digest in closure:
                continue
            closure.add(desc.digest)
            if desc.media_type:
                found.media_types.setdefault(desc.digest, desc.media_type)
            if desc.digest not in present:
                found.absent.setdefault(desc.digest, parent)
                continue
            if desc.digest in found.edges:
                kids = found.edges[desc.digest]
                stack.extend(
                    (Descriptor(found.media_types.get(kid, ""), kid), desc.digest) for kid in kids
                )
                continue
            if not graph.is_graph_type(desc.media_type):
                continue
            children = graph.children(desc.media_type, graph.read_node(store, desc))
            found.edges[desc.digest] = [child.digest for child in children]
            for child in children:
                if child.media_type:
                    found.media_types.setdefault(child.digest, child.media_type)
            stack.extend((child, desc.digest) for child in children)
        found.closures[root.digest] = closure
    return found


def heights(edges: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each node's height: 0 for a blob with no children, else 1 + its highest child's.

    Blobs that appear only as children are included (height 0). A cycle (which content
    addressing rules out, but labels could describe) is cut where it closes.
    """
    result: dict[str, int] = {}
    visiting: set[str] = set()
    for start in list(edges):
        if start in result:
            continue
        # Iterative post-order walk: (node, children already pushed?).
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                visiting.discard(node)
                done = [result[k] for k in edges.get(node, ()) if k in result]
                result[node] = 1 + max(done, default=-1)
                continue
            if node in result or node in visiting:
                continue
            visiting.add(node)
            stack.append((node, True))
            stack.extend((kid, False) for kid in edges.get(node, ()) if kid not in result)
    for children in edges.values():
        for kid in children:
            result.setdefault(kid, 0)
    return result
