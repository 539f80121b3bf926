"""`scoring-runtime profile ...`: the command line, its checks, and one line for whatever stops it."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from scoring_runtime.profiling import dataset as datasets
from scoring_runtime.profiling.errors import INTERRUPTED_EXIT, ProfileError, UsageError

PROG = "scoring-runtime profile"
EXTRA = "pip install 'scoring-runtime[profile]'"
DEFAULT_CONCURRENCY = "1,2,4,8"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve a score.py, send it a dataset of request bodies (one per line) at each load level until "
        "the measurement is stable, and report its latency, throughput, CPU and memory, with the CPU, memory and "
        "WORKER_COUNT to request for it. Flags not listed here are the server's (scoring-runtime --help).",
        epilog="Writes DIR/profile.json (Azure ML's field names), DIR/profile.png and DIR/server.log. See "
        "docs/profiling.md.",
        allow_abbrev=False,
    )
    server = parser.add_argument_group("the server")
    _add(server, "--entry_script", metavar="PATH", help="the score.py to serve (passed to the server)")
    _add(server, "--model_dir", metavar="DIR", help="its model folder (passed to the server)")
    _add(server, "--workers", metavar="N", type=_positive_int, help="WORKER_COUNT of the server started")
    _add(server, "--url", metavar="URL", help="profile a server already running there instead of starting one")
    _add(server, "--pid", metavar="PID", type=_positive_int, help="with --url: its main process, to sample")
    _add(
        server,
        "--startup_timeout",
        metavar="S",
        type=_positive_float,
        default=120.0,
        help="seconds for /ready (%(default)g)",
    )
    load = parser.add_argument_group("the load")
    _add(load, "--input_dataset", metavar="FILE", type=Path, required=True, help="request bodies, one per line")
    _add(load, "--content_type", metavar="TYPE", default="application/json", help="default: %(default)s")
    _add(
        load,
        "--header",
        metavar="NAME:VALUE",
        action="append",
        type=_header,
        default=[],
        help="another header, repeatable",
    )
    _add(load, "--path", metavar="PATH", default="/score", help="the route loaded (default: %(default)s)")
    levels = load.add_mutually_exclusive_group()
    _add(levels, "--concurrency", metavar="N,N...", help=f"requests outstanding (default: {DEFAULT_CONCURRENCY})")
    _add(levels, "--rate", metavar="R,R...", help="requests a second, sent whether or not earlier ones were answered")
    _add(load, "--distribution", choices=("constant", "poisson"), default="constant", help="of --rate's gaps")
    _add(load, "--warmup_requests", metavar="N", type=_count, default=20, help="sent first (default: %(default)s)")
    _add(load, "--max_in_flight", metavar="N", type=_positive_int, default=256, help="--rate's bound (%(default)s)")
    _add(load, "--request_timeout", metavar="S", type=_positive_float, default=60.0, help="seconds (%(default)g)")
    _add(load, "--seed", metavar="N", type=int, default=0, help="of the Poisson gaps (%(default)s)")
    measure = parser.add_argument_group("the measurement")
    _add(
        measure,
        "--measurement_interval",
        metavar="S",
        type=_positive_float,
        default=5.0,
        help="window, seconds (%(default)g)",
    )
    _add(measure, "--max_trials", metavar="N", type=_trials, default=10, help="windows per level (%(default)s)")
    _add(
        measure,
        "--stability_percentage",
        metavar="P",
        type=_positive_float,
        default=10.0,
        help="max/min of 3 windows within P %% (%(default)g)",
    )
    _add(measure, "--percentile", metavar="P", type=_percentile, default=90.0, help="latency compared (%(default)g)")
    _add(measure, "--latency_target_ms", metavar="MS", type=_positive_float, help="size for this latency at P")
    _add(
        measure,
        "--sample_interval",
        metavar="S",
        type=_positive_float,
        default=0.2,
        help="seconds between CPU and memory samples (%(default)g)",
    )
    _add(parser, "--output", metavar="DIR", type=Path, required=True, help="where the report is written")
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        args, server_args = build_parser().parse_known_args(argv)
        return _profile(args, server_args)
    except ProfileError as exc:
        print(f"{PROG}: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the server it started was stopped", file=sys.stderr)
        return INTERRUPTED_EXIT


def check(args: argparse.Namespace, server_args: list[str]) -> list[str]:
    """The server's flags, once the command line's combinations are checked."""
    if args.url is not None:
        given = [flag for flag in ("entry_script", "model_dir", "workers") if getattr(args, flag) is not None]
        if given or server_args:
            shown = ", ".join([f"--{flag}" for flag in given] + server_args)
            raise UsageError(f"{shown}: server flags apply to a server started here, not to one at --url")
    elif args.pid is not None:
        raise UsageError("--pid goes with --url: a server started here is sampled anyway")
    if args.rate is None and args.distribution != "constant":
        raise UsageError("--distribution goes with --rate")
    if not args.path.startswith("/"):
        raise UsageError(f"--path {args.path}: give a path such as /score")
    passed = list(server_args)
    for flag in ("entry_script", "model_dir"):
        if getattr(args, flag) is not None:
            passed += [f"--{flag}", getattr(args, flag)]
    if args.workers is not None:
        passed += ["--worker_count", str(args.workers)]
    return passed


def require_extras() -> None:
    missing = [name for name in ("aiohttp", "psutil", "matplotlib") if importlib.util.find_spec(name) is None]
    if missing:
        raise ProfileError(f"the profile needs {', '.join(missing)}: {EXTRA}")


def levels_of(args: argparse.Namespace) -> list[Any]:
    from scoring_runtime.profiling.load import Level

    if args.rate is not None:
        return [Level("rate", value) for value in _list(args.rate, "--rate", float)]
    return [
        Level("concurrency", value) for value in _list(args.concurrency or DEFAULT_CONCURRENCY, "--concurrency", int)
    ]


def _profile(args: argparse.Namespace, server_args: list[str]) -> int:
    passed = check(args, server_args)
    require_extras()
    levels = levels_of(args)
    dataset = datasets.load(args.input_dataset, args.content_type)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfileError(f"cannot create --output {args.output}: {exc.strerror or exc}")
    from scoring_runtime.profiling import run, table  # deferred: they import the extras

    def say(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    document = run.profile(args, passed, dataset, levels, say)
    print(table.summary(document))
    print(f"\nwrote {args.output / 'profile.json'} and {args.output / 'profile.png'}")
    return 0


def _list(text: str, flag: str, kind: type[int] | type[float]) -> list[float]:
    try:
        values = [kind(item) for item in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} {text}: give positive numbers separated by commas, such as 1,2,4")
    if not values or any(value <= 0 for value in values):
        raise UsageError(f"{flag} {text}: give positive numbers separated by commas, such as 1,2,4")
    return [float(value) for value in values]


def _number(kind: type[int] | type[float], low: float, what: str, above: bool = True) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > low if above else value >= low):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


_positive_int = _number(int, 0, "a positive whole number")
_count = _number(int, 0, "a whole number, 0 or more", above=False)
_trials = _number(int, 3, "3 or more: stability compares the last 3 windows", above=False)
_positive_float = _number(float, 0, "a positive number")


def _percentile(text: str) -> float:
    value = _positive_float(text)
    if value >= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 100, such as 90 or 99.9")
    return float(value)


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError("write it NAME:VALUE, such as 'Authorization: Bearer KEY'")
    return name.strip(), value.strip()


def _add(target: argparse._ActionsContainer, flag: str, **options: Any) -> None:
    # Each flag in both spellings, as the server's are (cli.py): --input_dataset and --input-dataset.
    spellings = dict.fromkeys((flag, flag.replace("_", "-")))
    target.add_argument(*spellings, dest=flag.removeprefix("--"), **options)
