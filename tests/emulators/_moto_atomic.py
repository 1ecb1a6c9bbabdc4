"""moto's own server (``moto_server``), with S3 conditional writes made atomic.

moto 5.x checks ``If-None-Match`` / ``If-Match`` and then writes, without a lock, while
werkzeug serves requests on many threads: two racing create-only writes can both succeed,
which S3 never allows. This launcher runs the same ``moto.server.main`` with one lock held
around every conditional PUT/POST/DELETE, so racing commits behave as they do on S3.
Everything else (arguments, routes, state) is plain moto.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto.s3.responses import S3Response
from moto.server import main

_lock = threading.Lock()
_original = S3Response._key_response


def _key_response(self: S3Response, request: Any, full_url: str) -> Any:
    conditional = request.headers.get("If-None-Match") or request.headers.get("If-Match")
    if conditional and request.method in ("PUT", "POST", "DELETE"):
        with _lock:
            return _original(self, request, full_url)
    return _original(self, request, full_url)


S3Response._key_response = _key_response  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
