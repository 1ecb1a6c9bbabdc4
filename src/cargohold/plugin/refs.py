"""What a containerd ingestion ref says about the blob being written.

containerd's metadata layer hands the content plugin refs of the form ``<ns>/<seq>/<ref>`` and
never the expected digest (it keeps that for its own check at commit). The client's ``<ref>``
usually names the digest anyway:

* pulls and fetches: ``layer-sha256:<hex>``, ``manifest-…``, ``index-…``, ``config-…``,
  ``unknown-…``, optionally with ``<name>@`` before the digest (containerd's
  ``remotes.MakeRefKey``);
* ``ctr images import``: ``tar-blobs/sha256/<hex>`` (the blob's path in the archive).

Such a digest is only a hint (see ``Store.writer``): it lets the upload go straight to the
blob's key, and a ref that names the wrong digest costs one failed commit, never a wrong blob.
"""

from __future__ import annotations

import re

__all__ = ["digest_hint"]

_HINTED = re.compile(
    r"(?:[^/]+/[0-9]+/)?"  # containerd's <namespace>/<sequence>/
    r"(?:[a-z]+-(?:.*@)?sha256:|tar-blobs/sha256/)"
    r"(?P<hex>[0-9a-f]{64})"
)


def digest_hint(ref: str) -> str:
    """The sha256 digest that a containerd ref names, or ``""``."""
    found = _HINTED.fullmatch(ref)
    return f"sha256:{found['hex']}" if found else ""
