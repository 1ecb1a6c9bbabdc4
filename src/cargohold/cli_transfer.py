"""``cargohold ingest`` and ``cargohold get``: thin layers over ``helpers.write_blob`` and
``helpers.read_blob``, with progress, resume notes and one-line failures."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Never

import click
from tqdm import tqdm

from .cli_context import CliState
from .cli_failures import EXIT_USAGE, CliFailure, file_failure
from .cli_format import echo_json, human_size
from .digests import parse_digest
from .errors import InvalidArgumentError
from .helpers import Progress, read_blob, write_blob

__all__ = ["get", "ingest", "parse_labels"]

PROGRESS_MIN_BYTES = 8 * 1024 * 1024


def parse_labels(pairs: tuple[str, ...], *, allow_delete: bool) -> dict[str, str | None]:
    """``k=v`` pairs; with ``allow_delete``, ``k=`` maps ``k`` to None (remove it)."""
    labels: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"a label must look like key=value, got {pair!r}")
        labels[key] = value if value or not allow_delete else None
    return labels


class _Bar:
    """A progress bar on stderr for large transfers on a terminal; silent otherwise."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._bar: tqdm[Never] | None = None
        self._shown = 0

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
                return
            self._bar = tqdm(
                total=total,
                initial=done,
                unit="B",
                unit_scale=True,
                file=sys.stderr,
                desc=self._description[:40],
            )
            self._shown = done
            return
        self._bar.update(done - self._shown)
        self._shown = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _IngestReport:
    """Says on stderr where an ingestion resumes (or why it restarted), then shows progress."""

    def __init__(self, ref: str) -> None:
        self._ref = ref
        self._started = False
        self.bar = _Bar(ref)

    def __call__(self, progress: Progress) -> None:
        if not self._started:
            self._started = True
            self._announce(progress)
        self.bar.update(progress.done, progress.total)

    def _announce(self, progress: Progress) -> None:
        of = f" of {progress.total} bytes" if progress.total else " bytes"
        if progress.restarted:
            click.echo(
                f"cargohold: {self._ref}: restarting at 0{of}: {progress.restarted}", err=True
            )
        elif progress.resumed_at:
            click.echo(
                f"cargohold: {self._ref}: resuming at {progress.resumed_at}{of} "
                f"({human_size(progress.resumed_at)} already stored)",
                err=True,
            )


def _open_source(source: str) -> IO[bytes]:
    if source == "-":
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as exc:
        raise file_failure(exc, source, "read") from exc


@click.command()
@click.argument("ref")
@click.argument("source", default="-")
@click.option("--expected", "--expected-digest", default="", help="Digest the content must have.")
@click.option(
    "--size",
    "--expected-size",
    type=click.IntRange(min=0),
    default=0,
    help="Size the content must have.",
)
@click.option("--label", "labels", multiple=True, help="Label to set (key=value), repeatable.")
@click.pass_obj
def ingest(
    obj: CliState, ref: str, source: str, expected: str, size: int, labels: tuple[str, ...]
) -> None:
    """Store SOURCE (a file, or - for stdin) under REF and print its digest.

    An interrupted ingest resumes where it stopped when the same command is run again (from
    stdin only with --expected). Content already stored counts as success; the labels are
    applied to it too.
    """
    on_interrupt = ""
    if source == "-" and not expected:
        on_interrupt = (
            "run it again with --expected DIGEST to resume from stdin (without it, it starts over)"
        )
    with obj.guard("ingest", ref=ref, on_interrupt=on_interrupt):
        wanted = {k: v or "" for k, v in parse_labels(labels, allow_delete=False).items()}
        if expected:
            expected = str(parse_digest(expected))
        handle = _open_source(source)  # before any writer: a bad path leaves no ingestion
        report = _IngestReport(ref)
        try:
            store = obj.store(create=True)
            result = write_blob(
                store, ref, handle, expected=expected, size=size, labels=wanted, progress=report
            )
        finally:
            report.bar.close()
            if handle is not sys.stdin.buffer:
                handle.close()
        if obj.as_json:
            echo_json(
                {
                    "digest": result.digest,
                    "ref": ref,
                    "size": result.size,
                    "existed": result.existed,
                    "resumed_at": result.resumed_at,
                    "restarted": result.restarted,
                },
                indent=None,
            )
            return
        click.echo(result.digest)
        if result.existed:
            applied = "; labels applied" if wanted else ""
            click.echo(f"cargohold: {result.digest} was already stored{applied}", err=True)


@click.command()
@click.argument("digest")
@click.option(
    "-o",
    "--output",
    default="-",
    help="File to write (written under a temporary name, renamed when complete). Default: stdout.",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Check the digest while streaming.",
)
@click.pass_obj
def get(obj: CliState, digest: str, output: str, verify: bool) -> None:
    """Write the blob DIGEST to stdout or a file, checking its digest as it streams.

    A blob whose bytes do not match its digest fails (exit 1) and leaves no output file.
    """
    with obj.guard("get", digest=digest):
        parse_digest(digest)
        if output != "-":
            folder = Path(output).parent
            if not folder.is_dir():
                raise CliFailure(
                    "error",
                    f"cannot write {output}: the directory {folder} does not exist",
                    "create it, or give another -o path",
                    EXIT_USAGE,
                )
        store = obj.store()
        bar = _Bar(digest)
        try:
            if output == "-":
                read_blob(store, digest, sys.stdout.buffer, verify=verify, progress=_feed(bar))
                return
            try:
                read_blob(store, digest, output, verify=verify, progress=_feed(bar))
            except OSError as exc:
                raise file_failure(exc, output, "write") from exc
        finally:
            bar.close()


def _feed(bar: _Bar) -> Callable[[Progress], None]:
    def report(progress: Progress) -> None:
        bar.update(progress.done, progress.total)

    return report
