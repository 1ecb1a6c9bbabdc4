"""The ``cargohold`` command: ``ctr content``-style access to a store.

The store comes from ``--store URL`` or ``CARGOHOLD_STORE``, defaulting to a ``file://``
directory under the user's data directory. Errors print as one line on stderr with a nonzero
exit status (2 for bad input, 1 otherwise).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click
import platformdirs
from tqdm import tqdm

from . import (
    AlreadyExistsError,
    ContentError,
    Descriptor,
    Info,
    InvalidArgumentError,
    Status,
    Store,
    open_store,
)

__all__ = ["cli", "default_store_url", "main"]

CHUNK = 4 * 1024 * 1024
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
F = TypeVar("F", bound=Callable[..., Any])


def default_store_url() -> str:
    """``file://`` + the user's data directory for cargohold."""
    return f"file://{Path(platformdirs.user_data_dir('cargohold')) / 'store'}"


def _age(when: datetime) -> str:
    seconds = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{max(seconds, 0)} seconds"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _info_json(info: Info) -> dict[str, Any]:
    return {
        "digest": info.digest,
        "size": info.size,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "labels": dict(info.labels),
    }


def _status_json(status: Status) -> dict[str, Any]:
    return {
        "ref": status.ref,
        "offset": status.offset,
        "total": status.total,
        "expected": status.expected,
        "started_at": status.started_at.isoformat(),
        "updated_at": status.updated_at.isoformat(),
    }


class _Ctx:
    def __init__(self, url: str, as_json: bool) -> None:
        self.url = url
        self.as_json = as_json
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except InvalidArgumentError as exc:
        click.echo(f"cargohold: error: {exc}", err=True)
        sys.exit(2)
    except ContentError as exc:
        click.echo(f"cargohold: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


@click.group()
@click.option(
    "--store",
    "store_url",
    envvar="CARGOHOLD_STORE",
    default=None,
    help="Store URL (memory://, file://, s3://, gs://, az://). Env: CARGOHOLD_STORE.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.version_option(package_name="cargohold")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None, as_json: bool) -> None:
    """containerd's content store on object storage."""
    state = _Ctx(store_url or default_store_url(), as_json)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _parse_labels(pairs: tuple[str, ...], *, allow_delete: bool) -> dict[str, str | None]:
    labels: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"label must look like key=value, got {pair!r}")
        labels[key] = value if value or not allow_delete else None
    return labels


@cli.command()
@click.argument("ref")
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@click.option("--expected", "--expected-digest", default="", help="Digest the content must have.")
@click.option("--size", "--expected-size", type=int, default=0, help="Size the content must have.")
@click.option("--label", "labels", multiple=True, help="Label to set on commit (key=value).")
@click.pass_obj
def ingest(
    obj: _Ctx, ref: str, source: str, expected: str, size: int, labels: tuple[str, ...]
) -> None:
    """Ingest SOURCE (a file, or - for stdin) under REF and commit it.

    Like containerd's content.WriteBlob, content that is already stored counts as success.
    """
    with _errors():
        parsed = {k: v or "" for k, v in _parse_labels(labels, allow_delete=False).items()}
        try:
            digest = _ingest(obj.store, ref, source, expected, size, parsed)
            note = ""
        except AlreadyExistsError:
            if not expected:
                raise
            digest, note = expected, "already exists"
        if obj.as_json:
            click.echo(json.dumps({"digest": digest, "ref": ref, "existed": bool(note)}))
        else:
            click.echo(digest)
            if note:
                click.echo(f"cargohold: {digest} {note}", err=True)


def _ingest(
    store: Store, ref: str, source: str, expected: str, size: int, labels: dict[str, str]
) -> str:
    with store.writer(ref, Descriptor(digest=expected, size=size)) as writer:
        resumed = writer.status().offset
        handle: BinaryIO
        if source == "-":
            handle = sys.stdin.buffer
            if resumed:
                raise InvalidArgumentError(
                    f"ingestion {ref!r} has {resumed} bytes already; stdin cannot be "
                    "resumed (abort it, or give a file)"
                )
        else:
            handle = open(source, "rb")  # noqa: SIM115 - closed below
            handle.seek(resumed)
        total = size or (Path(source).stat().st_size if source != "-" else 0)
        show = total >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
        try:
            with tqdm(
                total=total or None,
                initial=resumed,
                unit="B",
                unit_scale=True,
                disable=not show,
                file=sys.stderr,
                desc=ref[:40],
            ) as bar:
                while chunk := handle.read(CHUNK):
                    writer.write(chunk)
                    bar.update(len(chunk))
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
        digest = writer.digest()
        try:
            writer.commit(size, expected, labels)
        except AlreadyExistsError:
            if expected:
                raise
            return digest
        return digest


@cli.command()
@click.argument("digest")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@click.pass_obj
def get(obj: _Ctx, digest: str, output: str) -> None:
    """Write the blob DIGEST to stdout or a file."""
    with _errors():
        reader = obj.store.reader_at(digest)
        out: BinaryIO = sys.stdout.buffer if output == "-" else open(output, "wb")  # noqa: SIM115
        show = reader.size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
        try:
            with tqdm(
                total=reader.size, unit="B", unit_scale=True, disable=not show, file=sys.stderr
            ) as bar:
                offset = 0
                while offset < reader.size:
                    chunk = reader.read_at(offset, 4 * CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    offset += len(chunk)
                    bar.update(len(chunk))
        finally:
            reader.close()
            if out is not sys.stdout.buffer:
                out.close()
            else:
                out.flush()


def _print_info(obj: _Ctx, infos: list[Info]) -> None:
    if obj.as_json:
        click.echo(json.dumps([_info_json(i) for i in infos], indent=2))
        return
    rows = [("DIGEST", "SIZE", "AGE", "LABELS")]
    for i in infos:
        labels = ",".join(f"{k}={v}" for k, v in sorted(i.labels.items())) or "-"
        rows.append((i.digest, _size(i.size), _age(i.created_at), labels))
    _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        click.echo("\t".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())


@cli.command()
@click.argument("digest")
@click.pass_obj
def info(obj: _Ctx, digest: str) -> None:
    """Show one blob's size, times and labels."""
    with _errors():
        # Like `ctr content info`, the record prints as JSON either way.
        click.echo(json.dumps(_info_json(obj.store.info(digest)), indent=2))


@cli.command("ls")
@click.argument("filters", nargs=-1)
@click.option("-q", "--quiet", is_flag=True, help="Print only digests.")
@click.pass_obj
def ls(obj: _Ctx, filters: tuple[str, ...], quiet: bool) -> None:
    """List blobs matching any FILTER (containerd filter syntax)."""
    with _errors():
        found = list(obj.store.walk(*filters))
        if quiet:
            for item in found:
                click.echo(item.digest)
            return
        _print_info(obj, found)


@cli.command()
@click.argument("digest")
@click.argument("labels", nargs=-1)
@click.pass_obj
def label(obj: _Ctx, digest: str, labels: tuple[str, ...]) -> None:
    """Set labels (k=v) or remove them (k=) on DIGEST."""
    with _errors():
        parsed = _parse_labels(labels, allow_delete=True)
        wanted = {k: v for k, v in parsed.items() if v is not None}
        paths = [f"labels.{k}" for k in parsed]
        store = obj.store
        current = store.info(digest)
        updated = store.update(
            Info(digest, current.size, current.created_at, current.updated_at, wanted), *paths
        )
        if obj.as_json:
            click.echo(json.dumps(_info_json(updated), indent=2))
        else:
            click.echo(",".join(f"{k}={v}" for k, v in sorted(updated.labels.items())))


@cli.command("rm")
@click.argument("digests", nargs=-1, required=True)
@click.pass_obj
def rm(obj: _Ctx, digests: tuple[str, ...]) -> None:
    """Delete blobs."""
    with _errors():
        for digest in digests:
            obj.store.delete(digest)
            if not obj.as_json:
                click.echo(digest)
        if obj.as_json:
            click.echo(json.dumps({"deleted": list(digests)}))


@cli.command()
@click.argument("filters", nargs=-1)
@click.pass_obj
def active(obj: _Ctx, filters: tuple[str, ...]) -> None:
    """List ingestions in progress."""
    with _errors():
        found = obj.store.list_statuses(*filters)
        if obj.as_json:
            click.echo(json.dumps([_status_json(s) for s in found], indent=2))
            return
        rows = [("REF", "SIZE", "AGE")]
        for s in found:
            size = f"{s.offset}/{s.total}" if s.total else str(s.offset)
            rows.append((s.ref, size, _age(s.started_at)))
        _table(rows)


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def abort(obj: _Ctx, refs: tuple[str, ...]) -> None:
    """Abort ingestions and remove what they uploaded."""
    with _errors():
        for ref in refs:
            obj.store.abort(ref)
            if not obj.as_json:
                click.echo(ref)
        if obj.as_json:
            click.echo(json.dumps({"aborted": list(refs)}))


def _register_optional() -> None:
    try:
        from .plugin.command import serve
    except ImportError:

        @cli.command(context_settings={"ignore_unknown_options": True})
        @click.argument("args", nargs=-1, type=click.UNPROCESSED)
        def serve(args: tuple[str, ...]) -> None:
            """Serve containerd's content API (needs: pip install 'cargohold[grpc]')."""
            click.echo(
                "cargohold: error: serve needs grpcio; install it with: "
                "pip install 'cargohold[grpc]'",
                err=True,
            )
            sys.exit(2)

        return
    cli.add_command(serve)


_register_optional()


def main() -> None:
    """Console entry point."""
    cli(prog_name="cargohold")
