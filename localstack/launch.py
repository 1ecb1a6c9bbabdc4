"""Run LocalStack (``localstack.runtime.main``) with atomic conditional multipart completes.

LocalStack 4.13's PutObject checks ``If-None-Match`` under a lock, but CompleteMultipartUpload
checks it and then writes without one ("TODO: improve concurrency mechanism"), so racing
create-only completes can all succeed, which S3 never allows. This launcher holds one lock
around every conditional CompleteMultipartUpload, then starts the ordinary runtime.
``localstack/start.sh`` uses it unless ``CARGOHOLD_LOCALSTACK_PLAIN=1``.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from localstack.runtime.main import main
from localstack.services.s3.provider import S3Provider

_lock = threading.Lock()
_original = S3Provider.complete_multipart_upload


@functools.wraps(_original)  # keeps the @handler attributes LocalStack dispatches by
def _complete_multipart_upload(self: S3Provider, *args: Any, **kwargs: Any) -> Any:
    if kwargs.get("if_none_match") or kwargs.get("if_match"):
        with _lock:
            return _original(self, *args, **kwargs)
    return _original(self, *args, **kwargs)


S3Provider.complete_multipart_upload = _complete_multipart_upload  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
