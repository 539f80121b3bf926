"""Command line: flags in the reference's spelling (and dashed), handed to config and then to the server."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from scoring_runtime._version import __version__
from scoring_runtime.config import FIELDS, Settings, load_settings
from scoring_runtime.cpus import apply_thread_defaults
from scoring_runtime.errors import STARTUP_FAILURE_EXIT, ConfigError

# Paths typed on the command line are relative to where the command was typed, and resolved as the reference resolves
# them (realpath: a script behind a symlink sees its real path in AZUREML_ENTRY_SCRIPT); model_dir is passed on
# verbatim, as the reference does, because scripts read it back from AZUREML_MODEL_DIR.
_RESOLVED = {"entry_script", "config_file"}

# azmlinfsrv's flags. argparse let it take any unambiguous prefix of them (`--entry`, `--w`); such a prefix means the
# same flag here, even where one of our own flags shares it (`--w` is not ambiguous with --worker_timeout).
REFERENCE_FLAGS = (
    "--entry_script", "--model_dir", "--appinsights_instrumentation_key", "--port", "--health_port", "--worker_count",
    "--access_control_allow_origins", "--config_file", "--rest", "--help",
)  # fmt: skip


# Other names of our flags: KServe starts a custom runtime with `--model_dir /mnt/models --http_port 8080
# --model_name NAME`, the flags of its own Python model servers.
ALIASES = {"port": ("http_port",)}


def _spellings(flag: str) -> list[str]:
    names = (flag, *ALIASES.get(flag, ()))
    return [spelling for name in names for spelling in dict.fromkeys((f"--{name}", f"--{name.replace('_', '-')}"))]


def long_options() -> dict[str, str]:
    """Every long option, in each of its spellings, to its first spelling."""
    found = {"--help": "--help", "--version": "--version"}
    for spec in FIELDS.values():
        if spec.metadata["cli"] is not None:
            spellings = _spellings(spec.metadata["cli"])
            found |= dict.fromkeys(spellings, spellings[0])
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scoring-runtime",
        description="Serve an Azure ML score.py (init() and run()) over HTTP.",
        epilog="Every flag has an environment variable; see docs/configuration.md. `scoring-runtime package --help`: "
        "make a Docker build context of a score.py and its models (docs/packaging.md). `scoring-runtime profile "
        "--help`: measure a score.py's latency, CPU and memory under load, and the resources to request (docs/"
        "profiling.md).",
        # Prefixes are expanded by expand_abbreviations, which knows which flags the reference had.
        allow_abbrev=False,
    )
    for name, spec in FIELDS.items():
        flag = spec.metadata["cli"]
        if flag is None:
            continue
        spellings = _spellings(flag)
        help_text = f"{spec.metadata['doc']} [{spec.metadata['env']}]"
        if spec.metadata["const"] is not None:
            parser.add_argument(
                *spellings, dest=name, default=None, action="store_const", const=spec.metadata["const"], help=help_text
            )
        else:
            parser.add_argument(*spellings, dest=name, default=None, metavar=spec.metadata["env"], help=help_text)
    parser.add_argument("--version", action="version", version=f"scoring_runtime {__version__}")
    return parser


def expand_abbreviations(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """argv with each unambiguous prefix of a long option written out in full.

    A prefix is unambiguous when every option it starts is a spelling of one flag (`--entry`: --entry_script and
    --entry-script), or else when it starts exactly one of the reference's flags.
    """
    options = long_options()
    expanded: list[str] = []
    for index, argument in enumerate(argv):
        if argument == "--":  # what follows is positional, as argparse reads it
            return expanded + list(argv[index:])
        name, equals, value = argument.partition("=")
        if not name.startswith("--") or name in options:
            expanded.append(argument)
            continue
        matches = sorted(option for option in options if option.startswith(name))
        meant = {options[option] for option in matches}
        reference = [option for option in REFERENCE_FLAGS if option.startswith(name)]
        if len(meant) == 1:
            name = meant.pop()
        elif len(reference) == 1:
            name = reference[0]
        elif matches:
            parser.error(f"ambiguous option: {name} could match {', '.join(matches)}")
        expanded.append(name + equals + value)
    return expanded


def settings_from(argv: Sequence[str]) -> tuple[Settings, list[str]]:
    """The settings a command line asks for (with the environment and config file), and warnings worth logging.

    A usage error exits 2 (argparse); an invalid value raises ConfigError.
    """
    parser = build_parser()
    args = vars(parser.parse_args(expand_abbreviations(parser, argv)))
    for name in _RESOLVED:
        if args.get(name):
            args[name] = os.path.realpath(args[name])
    return load_settings(args)


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "package":
        from scoring_runtime.packaging import main as package  # deferred: the server never imports packaging

        sys.exit(package(argv[1:]))
    if argv and argv[0] == "profile":
        from scoring_runtime.profiling import main as profile  # deferred: the server never imports profiling

        sys.exit(profile(argv[1:]))
    try:
        settings, warnings = settings_from(argv)
    except ConfigError as exc:
        print(f"scoring-runtime: configuration error: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE_EXIT)
    # Before numpy or a framework is imported: their thread pools are sized when they load (cpus.py).
    threads = apply_thread_defaults(settings.model_threads, settings.worker_count)
    # One worker has no arbiter to start it again if it dies: a parent does, forked before the server stack is
    # imported, so that it stays small (supervise.py).
    from scoring_runtime.serving import run, serve_single_worker  # deferred: not for `--help`

    status = serve_single_worker(settings)
    if status is not None:
        sys.exit(status)

    try:
        code = run(settings, warnings, [threads.describe()])
    except ConfigError as exc:  # found when the server reads files the settings name (key files)
        print(f"scoring-runtime: configuration error: {exc}", file=sys.stderr)
        code = STARTUP_FAILURE_EXIT
    sys.exit(code)
