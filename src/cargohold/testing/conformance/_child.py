"""A store client in another OS process, driven by JSON lines on stdin (for multi-process tests).

Commands (one JSON object per line): ``open`` {ref, digest?, size?}, ``write`` {path, start, end,
pause?}, ``status``, ``digest``, ``close``, ``commit`` {size, expected}, ``wait_until`` {t} (sleep
until the wall-clock time ``t``), ``exit``. Each gets one JSON reply: ``{"ok": ...}`` or
``{"error": "<ErrorClassName>", "message": ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import cargohold
from cargohold import Descriptor, Writer


def main() -> None:
    url = sys.argv[1]
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    store = cargohold.open_store(url, **options)
    writer: Writer | None = None
    for line in sys.stdin:
        cmd: dict[str, Any] = json.loads(line)
        op = cmd["op"]
        try:
            result: Any = None
            if op == "open":
                desc = Descriptor(digest=cmd.get("digest", ""), size=cmd.get("size", 0))
                writer = store.writer(cmd["ref"], desc)
                result = writer.status().offset
            elif op == "write":
                assert writer is not None
                with open(cmd["path"], "rb") as handle:
                    handle.seek(cmd["start"])
                    remaining = cmd["end"] - cmd["start"]
                    step = cmd.get("step", remaining) or 1
                    while remaining > 0:
                        writer.write(handle.read(min(step, remaining)))
                        remaining -= min(step, remaining)
                        time.sleep(cmd.get("pause", 0))
                result = writer.status().offset
            elif op == "status":
                assert writer is not None
                status = writer.status()
                result = [
                    status.offset,
                    status.total,
                    status.expected,
                    status.started_at.isoformat(),
                    status.updated_at.isoformat(),
                ]
            elif op == "digest":
                assert writer is not None
                result = writer.digest()
            elif op == "close":
                assert writer is not None
                writer.close()
            elif op == "commit":
                assert writer is not None
                writer.commit(cmd.get("size", 0), cmd.get("expected", ""))
            elif op == "wait_until":
                time.sleep(max(0.0, cmd["t"] - time.time()))
            elif op == "exit":
                print(json.dumps({"ok": None}), flush=True)
                return
            print(json.dumps({"ok": result}), flush=True)
        except cargohold.ContentError as exc:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)


if __name__ == "__main__":
    main()
