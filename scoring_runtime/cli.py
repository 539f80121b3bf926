"""Command line: flags in the reference's spelling (and dashed), handed to config and then to the server."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from scoring_runtime._version import __version__
from scoring_runtime.config import FIELDS, load_settings
from scoring_runtime.errors import STARTUP_FAILURE_EXIT, ConfigError

# Paths typed on the command line are relative to where the command was typed; model_dir is passed on verbatim,
# as the reference does, because scripts read it back from AZUREML_MODEL_DIR.
_ABSOLUTE = {"entry_script", "config_file"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scoring-runtime",
        description="Serve an Azure ML score.py (init() and run()) over HTTP.",
        epilog="Every flag has an environment variable; see docs/configuration.md.",
    )
    for name, spec in FIELDS.items():
        flag = spec.metadata["cli"]
        if flag is None:
            continue
        spellings = [f"--{flag}"] + ([f"--{flag.replace('_', '-')}"] if "_" in flag else [])
        parser.add_argument(
            *spellings,
            dest=name,
            default=None,
            metavar=spec.metadata["env"],
            help=f"{spec.metadata['doc']} [{spec.metadata['env']}]",
        )
    parser.add_argument("--version", action="version", version=f"scoring_runtime {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = vars(build_parser().parse_args(argv))
    for name in _ABSOLUTE:
        if args.get(name):
            args[name] = os.path.abspath(args[name])
    try:
        settings, warnings = load_settings(args)
    except ConfigError as exc:
        print(f"scoring-runtime: configuration error: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE_EXIT)
    from scoring_runtime.serving import run  # deferred: `--help` should not pay for importing the server stack

    try:
        code = run(settings, warnings)
    except ConfigError as exc:  # found when the server reads files the settings name (key files)
        print(f"scoring-runtime: configuration error: {exc}", file=sys.stderr)
        code = STARTUP_FAILURE_EXIT
    sys.exit(code)
