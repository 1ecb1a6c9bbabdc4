"""The CLI's per-run state: which store, opened how, and the guard that turns errors into
one-line failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import click
import platformdirs

from . import ContentError, Store, open_store
from .cli_failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, Where, failure_for

__all__ = ["CliState", "default_store_url"]

_URL_HINT = "check the store URL given by --store or CARGOHOLD_STORE"


def default_store_url() -> str:
    """``file://`` + the user's data directory for cargohold."""
    return f"file://{Path(platformdirs.user_data_dir('cargohold')) / 'store'}"


def _local_path(url: str) -> Path | None:
    """The directory of a ``file://`` store URL (None for other schemes)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    return Path(path) if path.startswith("/") else None


class CliState:
    """What the group's options decided; opens the store on first use.

    ``url`` and ``as_json`` are read by subcommands (``serve`` included).
    """

    def __init__(self, url: str, as_json: bool, *, is_default: bool) -> None:
        self.url = url
        self.as_json = as_json
        self.is_default = is_default
        self.where = Where()
        self._store: Store | None = None

    def store(self, *, create: bool = False) -> Store:
        """The store; a ``file://`` directory is created only when ``create`` is true.

        Without ``create``, a missing directory is an error naming it (a mistyped path must
        not become an empty store), except for the default store, which reads as empty.
        """
        if self._store is None:
            try:
                self._store = open_store(self._url_to_open(create))
            except ContentError as exc:
                failure = failure_for(exc, self.where)
                failure.hint = _URL_HINT
                raise failure from exc
            except (ValueError, OverflowError) as exc:  # a URL too malformed to be parsed
                message = f"invalid store URL: {exc}"
                raise CliFailure("error", message, _URL_HINT, EXIT_USAGE) from exc
        return self._store

    def _url_to_open(self, create: bool) -> str:
        local = _local_path(self.url)
        if local is None or create or (local / ".cargohold").is_dir():
            return self.url
        if not self.is_default:
            raise CliFailure(
                "not found",
                f"there is no cargohold store at {local}",
                "check --store or CARGOHOLD_STORE (a store directory is created by the first "
                "'cargohold ingest' into it)",
                EXIT_FAILURE,
            )
        return f"memory://cargohold-cli-empty-{uuid.uuid4().hex}"

    @contextmanager
    def guard(
        self, command: str, *, ref: str = "", digest: str = "", on_interrupt: str = ""
    ) -> Iterator[None]:
        """Run a command's body: any exception becomes a CliFailure naming what it was on."""
        self.where = Where(command, ref, digest, on_interrupt)
        try:
            yield
        except (SystemExit, CliFailure, BrokenPipeError, click.exceptions.Exit):
            raise
        except click.ClickException:
            raise
        except BaseException as exc:
            raise failure_for(exc, self.where) from exc

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            store, self._store = self._store, None
            store.close()
