"""The click plumbing every ``shapeshift`` command shares: errors as exit 2, the law-set
source, JSON output, option groups and the progress bar.

The commands live beside it in ``shapeshift.commands``; ``cli.py`` loads each on first use.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from laws.errors import InputError, Terminated


class Group(click.Group):
    """How every command ends: an ``InputError`` or a usage error anywhere below (the usage
    errors of options, such as a value not among the choices, included) as one line on stderr
    and exit code 2; an operating system's refusal to write an output (disk full, a name too
    long, a closed standard output) as one line naming the path, exit 2 or 1; Ctrl-C as exit
    130 and SIGTERM as exit 143, each with one line and no traceback. The output folders the
    command claimed (``laws.io.lock``) are released however it ends."""

    def invoke(self, ctx: click.Context) -> Any:
        from laws.io.lock import release_claims

        outermost = ctx.parent is None
        # A handler can be set only in the main thread (an embedding program's thread keeps
        # SIGTERM as it was).
        handles = outermost and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if handles else None
        try:
            result = super().invoke(ctx)
            if outermost:
                sys.stdout.flush()  # here, so that a closed or full stdout is reported below
            return result
        except InputError as err:
            _fail(ctx, str(err), 2)
        except click.UsageError as err:
            where = f" (see `{err.ctx.command_path} --help`)" if err.ctx else ""
            _fail(ctx, f"{err.format_message()}{where}", 2)
        except OSError as err:
            _fail(ctx, os_error_line(err), 1 if err.errno in _ENVIRONMENT else 2)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", 128 + signal.SIGINT)
        except Terminated:
            _fail(ctx, "terminated", 128 + signal.SIGTERM)
        finally:
            if outermost:
                release_claims()
            if handles:
                signal.signal(signal.SIGTERM, previous)


# Failures of the machine, not of the input: the same command may succeed later.
_ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EPIPE}


def os_error_line(err: OSError) -> str:
    """An operating system's error as one line that names the path (or the stream).

    >>> os_error_line(OSError(28, "No space left on device", "out/runs.csv"))
    'out/runs.csv: No space left on device'
    """
    where = err.filename
    if where is None:  # a failed write() names no file: stdout's (click.echo) or a file's
        frames = traceback.extract_tb(err.__traceback__)
        where = "standard output" if any(f.name == "echo" and "click" in f.filename
                                         for f in frames) else "an output file"
    reason = err.strerror or err.__class__.__name__
    return f"{where}: {reason}"


def _fail(ctx: click.Context, message: str, code: int) -> None:
    if code != 2:
        # A failed write to stdout leaves its bytes in the buffer; point stdout at nothing, so
        # that the interpreter's last flush does not fail again, with a traceback.
        with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
            stdout = sys.stdout.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout)
            os.close(devnull)
    click.echo(f"error: {message}", err=True)
    ctx.exit(code)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def all_of(options: Sequence[Callable]) -> Callable:
    """One decorator that applies ``options`` in the order listed (as ``--help`` shows them)."""
    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def option_group(options: Sequence[Callable], build: Callable[..., Any], name: str) -> Callable:
    """Options that build one config object: the command receives ``build(**their values)``
    as its parameter ``name`` instead of the loose values (click's option groups)."""
    keys = [_parameter_name(option) for option in options]

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs[name] = build(**{key: kwargs.pop(key) for key in keys})
            return command(*args, **kwargs)

        return all_of(options)(wrapper)

    return decorate


def _parameter_name(option: Callable) -> str:
    """The Python name click gives the option that ``option`` (a ``click.option`` decorator)
    declares."""
    probe = option(lambda: None)
    return probe.__click_params__[-1].name


def laws_source(command: Callable) -> Callable:
    """The ``[LAWS.json] | --preset NAME`` pair that every law-consuming command takes; the
    command receives the loaded ``LawSet`` as ``laws`` and where it came from as ``source``."""

    @functools.wraps(command)
    def wrapper(*args: Any, laws_file: str | None, preset: str | None, **kwargs: Any) -> Any:
        from laws.io.source import LawSource

        source = LawSource.named(laws_file, preset)
        return command(*args, laws=source.load(), source=source, **kwargs)

    wrapper = click.option("--preset", metavar="NAME",
                           help="A built-in law set (see `presets`).")(wrapper)
    return click.argument("laws_file", metavar="[LAWS.json]", required=False,
                          type=click.Path(dir_okay=False))(wrapper)


def echo_json(data: object) -> None:
    """One JSON object on stdout, for machines."""
    click.echo(json.dumps(data, indent=2, allow_nan=False))


def json_flag(help_text: str = "Print one JSON object.") -> Callable:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def key_values(items: Sequence[str], option: str) -> list[tuple[str, str]]:
    """``KEY=VALUE`` option values as pairs; an ``InputError`` names a malformed one."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {item!r}: expected KEY=VALUE")
        pairs.append((key, value))
    return pairs


@contextlib.contextmanager
def progress_bar(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress callback (items done so far) drawing a bar on stderr. The bar appears with
    the first report, so that an error found before any work stays the only line on stderr."""
    with contextlib.ExitStack() as stack:
        bar = None

        def update(done: int) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(click.progressbar(length=length, label=label,
                                                            file=sys.stderr))
            bar.update(done - bar.pos)

        yield update


def _log_spec(*, log_loss: str | None, log_flops: str | None, log_tokens: str | None,
              flops_per_step: Sequence[str], flops_per_token: Sequence[str]) -> Any:
    from laws.io.logs import LogSpec, PerShape

    if log_tokens is not None and not flops_per_token:
        raise InputError("--log-tokens needs --flops-per-token")
    tokens = {} if log_tokens is None else {"tokens": log_tokens}
    return LogSpec(loss=log_loss, flops=log_flops,
                   flops_per_step=PerShape.parse(flops_per_step, "--flops-per-step"),
                   flops_per_token=PerShape.parse(flops_per_token, "--flops-per-token"),
                   **tokens)


# How training logs given as curves are read (laws.io.logs): the command receives ``logs``.
log_options = option_group([
    click.option("--log-loss", metavar="NAME",
                 help="Loss column, key or TensorBoard tag of training logs (default: the "
                      "first of eval_loss, eval/loss, val_loss, val/loss, ... they have)."),
    click.option("--flops-per-step", multiple=True, metavar="[SHAPE=]X",
                 help="FLOPs of one training step of a log, for every shape or one "
                      "(repeatable): FLOPs = steps trained x X."),
    click.option("--flops-per-token", multiple=True, metavar="[SHAPE=]X",
                 help="FLOPs per token (repeatable): FLOPs = the --log-tokens column x X."),
    click.option("--log-tokens", metavar="NAME",
                 help="Column of tokens seen, for --flops-per-token (default: the HF "
                      "Trainer's num_input_tokens_seen)."),
    click.option("--log-flops", metavar="NAME",
                 help="Column of training FLOPs so far, if the logs have one."),
], _log_spec, "logs")


def target_option(help_text: str, *, required: bool = False) -> Callable:
    """``--target``, the loss to reach, as every command declares it; ``help_text`` says where
    an omitted one comes from."""
    return click.option("--target", type=float, required=required, metavar="LOSS",
                        help=help_text)


def levels_option() -> Callable:
    """``--levels``, the loss grid of the search, as every command declares it (at least 2
    here; ``PlanRequest`` refuses more than ``MAX_LEVELS``)."""
    return click.option("--levels", type=click.IntRange(min=2), default=2000, show_default=True,
                        help="Loss grid levels of the search (at most 1,000,000).")


def plan_request(*, target_default: bool = False) -> Callable:
    """The law set and every search option, built into the objects commands take: the command
    receives ``laws`` (a ``LawSet``), ``source`` (its ``LawSource``) and ``request`` (the
    ``PlanRequest``). With ``target_default`` an omitted ``--target`` takes the law set's
    ``default_target``."""
    target_help = ("Loss to reach (default: the law set's default_target, when it has one)."
                   if target_default else "Loss to reach.")
    options = [
        target_option(target_help, required=not target_default),
        click.option("--start-loss", type=float, metavar="E0",
                     help="Loss where the schedule starts (default: the highest first measured "
                          "loss of fitted laws, else where every shape's law starts)."),
        levels_option(),
        click.option("--switch-flops", type=float, metavar="X",
                     help="FLOPs per switch (default: the law set's transitions)."),
        click.option("--switch-seconds", type=float, metavar="S",
                     help="Seconds per switch (seconds and money objectives)."),
        click.option("--switch-penalty", type=float, metavar="D", help="Loss added by a switch."),
        click.option("--allowed", metavar="SPEC", multiple=True,
                     help="all, one-axis, or FROM:TO,FROM:TO,... (pairs: repeatable)."),
        click.option("--only-grow", multiple=True, metavar="AXIS",
                     help="Axis that may only grow (repeatable)."),
        click.option("--only-shrink", multiple=True, metavar="AXIS",
                     help="Axis that may only shrink (repeatable)."),
        click.option("--max-switches", type=int, metavar="K", help="At most K switches."),
        click.option("--objective", type=click.Choice(["flops", "seconds", "money"]),
                     default="flops", show_default=True,
                     help="What the search minimises; seconds need throughputs, money "
                          "--price-per-hour."),
        click.option("--price-per-hour", type=float, metavar="PRICE",
                     help="Price per accelerator-hour."),
        click.option("--robust", type=float, metavar="PERCENTILE",
                     help="On laws fitted with --bootstrap: also pick the route whose saving at "
                          "this percentile of the bootstrap samples is highest (e.g. 10)."),
    ]
    keys = [_parameter_name(option) for option in options]

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, laws: Any, source: Any, **kwargs: Any) -> Any:
            from laws.search.request import PlanRequest, default_target
            from laws.search.switches import parse_allowed

            given = {key: kwargs.pop(key) for key in keys}
            target = given.pop("target")
            if target is None:
                target = default_target(laws)
            # Repeated --allowed add pairs; "all" or "one-axis" beside pairs is refused.
            given["allowed"] = (parse_allowed(",".join(given["allowed"]))
                                if given["allowed"] else None)
            request = PlanRequest.for_laws(laws, target, **given)
            return command(*args, laws=laws, source=source, request=request, **kwargs)

        return laws_source(all_of(options)(wrapper))

    return decorate
