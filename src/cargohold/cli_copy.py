"""``cargohold copy`` and ``cargohold verify``: thin layers over ``images.copy.copy`` and
``images.verify.verify``, with a progress bar on a terminal (tqdm, as ``ingest`` and ``get``
use), one summary line, and ``--json``."""

from __future__ import annotations

import sys
from typing import Never, Protocol

import click
from tqdm import tqdm

from .cli_context import CliState
from .cli_failures import EXIT_FAILURE, EXIT_USAGE, CliFailure
from .cli_format import echo_json, human_size
from .digests import parse_digest
from .images.copy import DEFAULT_CONCURRENCY, CopySummary, copy, parse_shard
from .images.verify import VerifyReport, verify

__all__ = ["copy_command", "verify_command"]


class _Progress(Protocol):
    """What copy and verify report as they go: blobs and bytes, done and in all."""

    @property
    def blobs_done(self) -> int: ...
    @property
    def blobs_total(self) -> int: ...
    @property
    def bytes_done(self) -> int: ...
    @property
    def bytes_total(self) -> int: ...


class _Bar:
    """A byte progress bar on stderr, shown only on a terminal and never with --json."""

    def __init__(self, description: str, *, enabled: bool) -> None:
        self._description = description
        self._enabled = enabled and sys.stderr.isatty()
        self._bar: tqdm[Never] | None = None
        self._shown = 0

    def update(self, progress: _Progress) -> None:
        """Show ``progress``: a progress callback for ``copy`` and ``verify``."""
        if not self._enabled:
            return
        blobs_done, blobs_total = progress.blobs_done, progress.blobs_total
        done, total = progress.bytes_done, progress.bytes_total
        if self._bar is not None and done < self._shown:  # a new phase (sharded copies)
            self._bar.close()
            self._bar, self._shown = None, 0
        if self._bar is None:
            self._bar = tqdm(
                total=total, unit="B", unit_scale=True, file=sys.stderr, desc=self._description
            )
        self._bar.set_postfix_str(f"{blobs_done}/{blobs_total} blobs", refresh=False)
        self._bar.update(done - self._shown)
        self._shown = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _usage(message: str, hint: str) -> CliFailure:
    return CliFailure("error", message, hint, EXIT_USAGE)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _summary_line(summary: CopySummary) -> str:
    line = (
        f"copied {_count(summary.blobs_copied, 'blob')} ({human_size(summary.bytes_copied)}), "
        f"skipped {summary.blobs_skipped} already there ({human_size(summary.bytes_skipped)}), "
        f"{_count(len(summary.names_written), 'name')} written"
    )
    if summary.resumed:
        line += f", {summary.resumed} resumed"
    if summary.blobs_other_shards:
        line += f", {_count(summary.blobs_other_shards, 'blob')} left to other shards"
    if summary.blobs_pending:
        line += f", {_count(summary.blobs_pending, 'manifest')} pending"
    if summary.names_pending:
        line += f", {_count(len(summary.names_pending), 'name')} pending (image incomplete)"
    if summary.names_skipped:
        n = len(summary.names_skipped)
        line += f", {_count(n, 'name')} skipped (pointing at nothing in the source)"
    if summary.missing_in_source:
        n = len(summary.missing_in_source)
        line += f", {_count(n, 'referenced blob')} absent from the source"
    return line


@click.command("copy")
@click.argument("names", nargs=-1)
@click.option(
    "--from",
    "from_url",
    default=None,
    help="Source store URL (default: the store given by --store / CARGOHOLD_STORE).",
)
@click.option("--to", "to_url", required=True, help="Destination store URL.")
@click.option("--all", "copy_all", is_flag=True, help="Copy every blob and every name.")
@click.option(
    "--shard",
    default=None,
    help="Copy shard I of N (I/N): layers and configs split by digest; manifests and names "
    "follow once all their layers are in.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Blobs copied at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def copy_command(
    obj: CliState,
    names: tuple[str, ...],
    from_url: str | None,
    to_url: str,
    copy_all: bool,
    shard: str | None,
    concurrency: int,
    as_json: bool,
) -> None:
    """Copy images (NAME... or --all) to another store, any driver to any driver.

    Only the blobs the destination lacks are copied (it is listed, not asked blob by blob),
    children before the manifests and indexes that refer to them, names last. Run it again
    after an interruption: it copies only what is still missing, and resumes a blob that was
    half copied. With --shard I/N several runs split the work; a name is written by the run
    that finds its whole image at the destination.
    """
    as_json = as_json or obj.as_json
    with obj.guard("copy", on_interrupt="run the same command again: it copies what is missing"):
        if copy_all == bool(names):
            raise _usage("give image NAMEs or --all (not both)", "see 'cargohold copy --help'")
        shard_of = parse_shard(shard) if shard is not None else None
        source = CliState(from_url, as_json, is_default=False) if from_url else obj
        dest = CliState(to_url, as_json, is_default=False)
        if source.url == dest.url:
            raise _usage("--from and --to are the same store", "give another --to")
        bar = _Bar("copy", enabled=not as_json)

        try:
            summary = copy(
                source.store(),
                dest.store(create=True),
                None if copy_all else list(names),
                shard=shard_of,
                concurrency=concurrency,
                progress=bar.update,
            )
        finally:
            bar.close()
            if source is not obj:
                source.close()
            dest.close()
    if as_json:
        echo_json(summary.to_json(), indent=None)
    else:
        click.echo(_summary_line(summary))
        for name in summary.names_pending:
            click.echo(f"cargohold: {name}: pending (its image is not complete yet)", err=True)


def _problem_lines(report: VerifyReport) -> list[str]:
    return [f"{p.kind} {p.digest}: {p.detail}" for p in report.problems]


@click.command("verify")
@click.argument("digests", nargs=-1)
@click.option("--all", "check_all", is_flag=True, help="Check every blob and every name.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Blobs re-hashed at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def verify_command(
    obj: CliState, digests: tuple[str, ...], check_all: bool, concurrency: int, as_json: bool
) -> None:
    """Check blobs (DIGEST... or --all) and the images that use them; exit 1 on any problem.

    Re-hashes each blob, and checks that manifests, indexes and names refer only to blobs the
    store holds. Prints each problem as KIND DIGEST: DETAIL (corrupt, missing, missing-child,
    dangling-name, malformed).
    """
    as_json = as_json or obj.as_json
    with obj.guard("verify"):
        if check_all == bool(digests):
            raise _usage("give DIGESTs or --all (not both)", "see 'cargohold verify --help'")
        for digest in digests:
            parse_digest(digest)
        bar = _Bar("verify", enabled=not as_json)

        try:
            result = verify(
                obj.store(),
                None if check_all else list(digests),
                concurrency=concurrency,
                progress=bar.update,
            )
        finally:
            bar.close()
    if as_json:
        echo_json(result.to_json(), indent=None)
    else:
        for line in _problem_lines(result):
            click.echo(line)
        click.echo(
            f"checked {_count(result.blobs_checked, 'blob')} ({human_size(result.bytes_checked)}), "
            f"{result.nodes_checked} manifests and indexes, "
            f"{_count(result.names_checked, 'name')}: "
            + ("ok" if result.ok else _count(len(result.problems), "problem")),
            err=not result.ok,
        )
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILURE)
