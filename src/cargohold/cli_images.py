"""``import``, ``images`` (``images rm``) and ``export``: images and their names in a store.

Thin layers over ``cargohold.images`` and ``cargohold.names``; failures go through the same
``CliState.guard`` as every other command (one line on stderr, or one JSON object with
``--json``; exit 2 for bad usage, 1 for a failure, 130 after Ctrl-C).
"""

from __future__ import annotations

import os
from typing import Any

import click

from .cli_context import CliState
from .cli_failures import EXIT_FAILURE, CliFailure
from .cli_format import echo_json, human_size, table
from .errors import AlreadyExistsError, DataLossError, FailedPreconditionError, NotFoundError
from .images.exporter import export as export_images
from .images.importer import DEFAULT_CONCURRENCY as IMPORT_CONCURRENCY
from .images.importer import import_images
from .names import ImageName

__all__ = ["export", "images", "import_"]

_IMAGES_HINT = "list the store's images with 'cargohold images'"


def _missing_image(exc: NotFoundError) -> CliFailure:
    return CliFailure("not found", str(exc), _IMAGES_HINT, EXIT_FAILURE)


def _bad_archive(exc: DataLossError | FailedPreconditionError) -> CliFailure:
    kind = "data loss" if isinstance(exc, DataLossError) else "failed precondition"
    hint = (
        "the archive is incomplete or damaged (nothing was named; blobs already imported are "
        "kept): make it again, then run the same command"
    )
    return CliFailure(kind, str(exc), hint, EXIT_FAILURE)


def _image_json(image: ImageName) -> dict[str, Any]:
    return {
        "name": image.name,
        "digest": image.target.digest,
        "media_type": image.target.media_type,
        "size": image.target.size,
    }


@click.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=str))
@click.option("--name", "names", multiple=True, help="Name the image (repeatable; one image).")
@click.option(
    "--base-name",
    default=None,
    help="Repository for a bare tag found as an OCI ref.name (app: '1.0' -> 'app:1.0').",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=IMPORT_CONCURRENCY,
    show_default=True,
    help="Blobs written at once.",
)
@click.pass_obj
def import_(
    obj: CliState, path: str, names: tuple[str, ...], base_name: str | None, concurrency: int
) -> None:
    """Import the images of PATH: an OCI layout directory, an OCI archive (.tar, maybe
    gzipped) or a docker-archive ('docker save'). Blobs already stored are not uploaded."""
    with obj.guard("import", on_interrupt="run the same command again to resume the import"):
        store = obj.store(create=True)
        try:
            result = import_images(
                store, path, names=names, base_name=base_name, concurrency=concurrency
            )
        except (DataLossError, FailedPreconditionError) as exc:
            raise _bad_archive(exc) from exc
        if obj.as_json:
            echo_json(
                {
                    "format": result.format,
                    "images": [
                        {
                            "names": list(image.names),
                            "digest": image.target.digest,
                            "media_type": image.target.media_type,
                            "size": image.target.size,
                        }
                        for image in result.images
                    ],
                    "blobs_imported": result.blobs_imported,
                    "blobs_skipped": result.blobs_skipped,
                    "bytes_imported": result.bytes_imported,
                }
            )
            return
        for image in result.images:
            shown = ", ".join(image.names) or "(no name)"
            click.echo(f"{image.target.digest}  {shown}")
        click.echo(
            f"imported {result.blobs_imported} blobs ({human_size(result.bytes_imported)}), "
            f"{result.blobs_skipped} already stored"
        )


@click.group("images", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def images(ctx: click.Context, as_json: bool) -> None:
    """List the store's image names (name, digest, media type, size)."""
    obj: CliState = ctx.obj
    if as_json:
        obj.as_json = True
    if ctx.invoked_subcommand is not None:
        return
    with obj.guard("images"):
        found = obj.store().names.list()
        if obj.as_json:
            echo_json([_image_json(image) for image in found])
            return
        rows = [("NAME", "DIGEST", "MEDIA TYPE", "SIZE")]
        for image in found:
            target = image.target
            rows.append((image.name, target.digest, target.media_type, human_size(target.size)))
        table(rows)


@images.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def images_rm(obj: CliState, names: tuple[str, ...]) -> None:
    """Remove image names (their content stays in the store). Nothing is removed if any
    NAME does not exist."""
    with obj.guard("images rm"):
        try:
            removed = obj.store().names.remove(*names)
        except NotFoundError as exc:
            raise _missing_image(exc) from exc
        if obj.as_json:
            echo_json({"removed": removed})
        else:
            for name in removed:
                click.echo(name)


@click.command("export")
@click.argument("args", nargs=-1, required=True, metavar="NAME... PATH")
@click.pass_obj
def export(obj: CliState, args: tuple[str, ...]) -> None:
    """Write the images NAME... to PATH: an OCI archive when PATH ends in .tar, else an OCI
    layout directory (which must not exist yet, or be empty)."""
    if len(args) < 2:
        raise click.UsageError("give at least one image NAME and the PATH to write")
    *names, path = args
    with obj.guard("export"):
        try:
            result = export_images(obj.store(), names, os.fspath(path))
        except NotFoundError as exc:
            raise _missing_image(exc) from exc
        except AlreadyExistsError as exc:
            raise CliFailure(
                "already exists",
                str(exc),
                "give a new path (or an empty directory), or remove the old export first",
                EXIT_FAILURE,
            ) from exc
        if obj.as_json:
            echo_json(
                {
                    "path": result.path,
                    "archive": result.archive,
                    "images": [_image_json(image) for image in result.images],
                    "blobs": result.blobs,
                    "bytes": result.bytes,
                }
            )
            return
        kind = "OCI archive" if result.archive else "OCI layout"
        click.echo(
            f"exported {len(result.images)} images ({result.blobs} blobs, "
            f"{human_size(result.bytes)}) to {kind} {result.path}"
        )
