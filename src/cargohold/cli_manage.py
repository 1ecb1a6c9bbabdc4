"""``info``, ``ls``, ``label``, ``rm``, ``active`` and ``abort``: looking at and managing what a
store holds. None of them creates a store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import click

from .cli_context import CliState
from .cli_failures import EXIT_USAGE, CliFailure, Where, emit, failure_for
from .cli_format import age, echo_json, human_size, info_json, status_json, table
from .cli_transfer import parse_labels
from .digests import parse_digest
from .filters import parse_filters
from .types import Info

__all__ = ["abort", "active", "info", "label", "ls", "rm"]


@click.command()
@click.argument("digest")
@click.pass_obj
def info(obj: CliState, digest: str) -> None:
    """Show one blob's size, times and labels (as JSON, like ``ctr content info``)."""
    with obj.guard("info", digest=digest):
        parse_digest(digest)
        echo_json(info_json(obj.store().info(digest)))


def _print_infos(obj: CliState, infos: list[Info]) -> None:
    if obj.as_json:
        echo_json([info_json(i) for i in infos])
        return
    rows = [("DIGEST", "SIZE", "AGE", "LABELS")]
    for i in infos:
        labels = ",".join(f"{k}={v}" for k, v in sorted(i.labels.items())) or "-"
        rows.append((i.digest, human_size(i.size), age(i.created_at), labels))
    table(rows)


@click.command("ls")
@click.argument("filters", nargs=-1)
@click.option("-q", "--quiet", is_flag=True, help="Print only digests.")
@click.pass_obj
def ls(obj: CliState, filters: tuple[str, ...], quiet: bool) -> None:
    """List blobs matching any FILTER (containerd filter syntax)."""
    with obj.guard("ls"):
        parse_filters(*filters)  # bad input is reported before the store is opened
        found = list(obj.store().walk(*filters))
        if quiet:
            for item in found:
                click.echo(item.digest)
            return
        _print_infos(obj, found)


@click.command()
@click.argument("digest")
@click.argument("labels", nargs=-1)
@click.pass_obj
def label(obj: CliState, digest: str, labels: tuple[str, ...]) -> None:
    """Set labels (k=v) or remove them (k=) on DIGEST; other labels are kept."""
    with obj.guard("label", digest=digest):
        parse_digest(digest)
        if not labels:
            raise CliFailure(
                "error",
                "nothing to change",
                f"give key=value to set a label or key= to remove one; to see the labels: "
                f"cargohold info {digest}",
                EXIT_USAGE,
            )
        parsed = parse_labels(labels, allow_delete=True)
        store = obj.store()
        kept = {k: v for k, v in parsed.items() if v is not None}
        removed = [k for k, v in parsed.items() if v is None]
        now = datetime.now(UTC)  # the store keeps the blob's own times
        updated = store.update(
            Info(digest, 0, now, now, kept), *[f"labels.{k}" for k in [*kept, *removed]]
        )
        if obj.as_json:
            echo_json(info_json(updated))
        else:
            click.echo(",".join(f"{k}={v}" for k, v in sorted(updated.labels.items())))


def _each(
    obj: CliState,
    command: str,
    names: tuple[str, ...],
    action: Callable[[str], None],
    done_key: str,
) -> None:
    """Apply ``action`` to every name, going on past failures (each reported on its own line);
    at the end, exit with the highest status of those failures (2 if any name was malformed)."""
    done: list[str] = []
    failed: list[dict[str, str]] = []
    status = 0
    with obj.guard(command):
        store_failure: CliFailure | None = None
        for name in names:
            where = Where(command, ref=name, digest=name)
            try:
                action(name)
            except CliFailure as exc:
                store_failure = exc  # the store itself cannot be opened: nothing else will work
                break
            except Exception as exc:
                failure = failure_for(exc, where)
                emit(failure, as_json=obj.as_json)
                failed.append({"name": name, "kind": failure.kind, "message": failure.message})
                status = max(status, failure.code)
                continue
            done.append(name)
            if not obj.as_json:
                click.echo(name)
        if store_failure is not None:
            raise store_failure
        if obj.as_json:
            echo_json({done_key: done, "failed": failed}, indent=None)
    if status:
        raise click.exceptions.Exit(status)


@click.command("rm")
@click.argument("digests", nargs=-1, required=True)
@click.pass_obj
def rm(obj: CliState, digests: tuple[str, ...]) -> None:
    """Delete blobs; goes on past any that cannot be deleted (then exits 1)."""
    with obj.guard("rm"):
        for digest in digests:
            parse_digest(digest)
    _each(obj, "rm", digests, lambda d: obj.store().delete(d), "deleted")


@click.command()
@click.argument("filters", nargs=-1)
@click.pass_obj
def active(obj: CliState, filters: tuple[str, ...]) -> None:
    """List ingestions in progress (matching any FILTER)."""
    with obj.guard("active"):
        parse_filters(*filters)
        found = obj.store().list_statuses(*filters)
        if obj.as_json:
            echo_json([status_json(s) for s in found])
            return
        rows = [("REF", "SIZE", "AGE")]
        for s in found:
            size = human_size(s.offset)
            if s.total:
                size += f" / {human_size(s.total)}"
            rows.append((s.ref, size, age(s.started_at)))
        table(rows)


@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def abort(obj: CliState, refs: tuple[str, ...]) -> None:
    """Abort ingestions and remove what they uploaded; goes on past failures (then exits 1)."""
    _each(obj, "abort", refs, lambda r: obj.store().abort(r), "aborted")
