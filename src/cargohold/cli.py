"""The ``cargohold`` command: ``ctr content``-style access to a store.

The store comes from ``--store URL`` or ``CARGOHOLD_STORE``, defaulting to a ``file://``
directory under the user's data directory. The commands are thin layers over the library's
helpers (``cargohold.helpers``): ``cli_transfer`` (ingest, get), ``cli_manage`` (info, ls, label,
rm, active, abort). Every failure prints one line on stderr (one JSON object with ``--json``)
saying what to do next, and exits 2 for bad usage, 1 for a failure, 130 after Ctrl-C
(``cli_failures``). ``CARGOHOLD_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import click

from .cli_context import CliState, default_store_url
from .cli_copy import copy_command, verify_command
from .cli_failures import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliFailure,
    Where,
    emit,
    failure_for,
)
from .cli_images import export, images, import_
from .cli_manage import abort, active, info, label, ls, rm
from .cli_transfer import get, ingest

__all__ = ["cli", "default_store_url", "main", "run"]

_BROKEN_PIPE = 141
_RUNNING: list[CliState] = []
"""This run's state, so that a Ctrl-C caught outside a command can still name what it hit."""


@click.group()
@click.option(
    "--store",
    "store_url",
    envvar="CARGOHOLD_STORE",
    default=None,
    help="Store URL (memory://, file://, s3://, gs://, az://). Env: CARGOHOLD_STORE.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (errors too).")
@click.version_option(package_name="cargohold")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None, as_json: bool) -> None:
    """containerd's content store on object storage."""
    if store_url is not None and not store_url.strip():
        raise click.BadParameter(
            "must not be empty (leave --store out to use the default store)",
            param_hint="'--store'",
        )
    state = CliState(store_url or default_store_url(), as_json, is_default=store_url is None)
    ctx.obj = state
    ctx.call_on_close(state.close)
    _RUNNING[:] = [state]


for _command in (
    ingest,
    get,
    info,
    ls,
    label,
    rm,
    active,
    abort,
    copy_command,
    verify_command,
    import_,
    images,
    export,
):
    cli.add_command(_command)


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


def _wants_json(args: Sequence[str]) -> bool:
    """Whether ``--json`` was given among the group's options (before the command name)."""
    for arg in args:
        if arg == "--json":
            return True
        if arg in cli.commands:
            return False
    return False


def _usage_failure(exc: click.UsageError) -> CliFailure:
    command = exc.ctx.command_path if exc.ctx is not None else "cargohold"
    return CliFailure("error", exc.format_message(), f"see '{command} --help'", EXIT_USAGE)


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI on ``args`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if args is None else args)
    # The library logs for servers; the CLI says what matters itself, in one line.
    logging.getLogger("cargohold").addHandler(logging.NullHandler())
    as_json = _wants_json(argv)
    interrupted: list[bool] = []

    def on_sigint(signum: int, frame: object) -> None:
        interrupted.append(True)
        raise KeyboardInterrupt

    previous_hook = sys.unraisablehook

    def on_unraisable(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and interrupted:
            # Ctrl-C landed in a callback Python runs by itself (a weakref callback, a
            # __del__), which cannot raise: Python would print it and go on as if no key had
            # been pressed. Send it again, from another thread a moment later, so that it
            # reaches the code that callback interrupted (raised here, it would land in
            # this hook).
            threading.Thread(target=_sigint_again, name="cargohold-sigint", daemon=True).start()
            return
        previous_hook(unraisable)

    # Python's own Ctrl-C behaviour, remembered: a KeyboardInterrupt that lands inside the
    # standard library can come out as another error (threading.Condition.wait re-acquiring
    # its lock: "release unlocked lock"), and then it is still the interruption to report.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
        sys.unraisablehook = on_unraisable
    try:
        return _run_command(argv, as_json, interrupted)
    finally:
        if sys.unraisablehook is on_unraisable:
            sys.unraisablehook = previous_hook


def _sigint_again() -> None:
    time.sleep(_SIGINT_AGAIN_AFTER)
    os.kill(os.getpid(), signal.SIGINT)


_SIGINT_AGAIN_AFTER = 0.05


def _run_command(argv: list[str], as_json: bool, interrupted: list[bool]) -> int:
    """``run``'s body: the command, and how its failures and interruptions are reported."""
    try:
        result = cli.main(args=argv, prog_name="cargohold", standalone_mode=False)
    except CliFailure as failure:
        if interrupted and failure.code != EXIT_USAGE:
            failure = failure_for(KeyboardInterrupt(), _RUNNING[0].where if _RUNNING else Where())
        emit(failure, as_json=as_json)
        return failure.code
    except click.UsageError as exc:
        emit(_usage_failure(exc), as_json=as_json)
        return EXIT_USAGE
    except click.ClickException as exc:
        emit(CliFailure("error", exc.format_message(), "", exc.exit_code), as_json=as_json)
        return exc.exit_code
    except BrokenPipeError:
        # The reader of our output went away (``cargohold get D | head``): not an error here.
        _silence_stdout()
        return _BROKEN_PIPE
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        stopped = failure_for(exc, _RUNNING[0].where if _RUNNING else Where())
        emit(stopped, as_json=as_json)
        return stopped.code
    except Exception as exc:
        if interrupted:
            stopped = failure_for(KeyboardInterrupt(), _RUNNING[0].where if _RUNNING else Where())
            emit(stopped, as_json=as_json)
            return stopped.code
        if os.environ.get("CARGOHOLD_DEBUG"):
            raise
        emit(failure_for(exc, Where()), as_json=as_json)
        return EXIT_FAILURE
    return result if isinstance(result, int) else 0


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main() -> None:
    """Console entry point."""
    code = run()
    # The command is over (its store closed) and its status decided. Exit now, without the
    # interpreter's own shutdown: Python puts SIGINT back to its default action during that
    # shutdown, so a Ctrl-C arriving then would turn a finished command's status into a
    # death by signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.shutdown()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)
