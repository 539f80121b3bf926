"""`scoring-runtime package ...`: the command line, and the order of the work."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from scoring_runtime._version import __version__
from scoring_runtime.packaging import build, context, inputs, requirements
from scoring_runtime.packaging.errors import PackageError, UsageError
from scoring_runtime.packaging.inputs import Package

PROG = "scoring-runtime package"
DEFAULT_BASE_IMAGE = f"scoring-runtime:{__version__}"
DEFAULT_PYTHON = "3.11"  # the base image's


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's usage block and message become the one line every other mistake gets.
        raise UsageError(f"{message} (see {PROG} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Write a Docker build context in Azure ML's layout: the code in azureml-app/, the models in "
        "azureml-models/<name>/<version>/, the requirements as wheels, and a Dockerfile on the scoring-runtime image.",
        epilog="See docs/packaging.md.",
        allow_abbrev=False,
    )
    _add(parser, "--entry_script", metavar="PATH", help="score.py (none: the models are served without a script)")
    _add(parser, "--source_dir", metavar="DIR", help="the code for /var/azureml-app (default: the script's folder)")
    models = parser.add_mutually_exclusive_group()
    _add(models, "--model_dir", metavar="DIR", help="one model, named after its folder (or <name>/<version>)")
    _add(models, "--model", metavar="NAME:VERSION=PATH", action="append", help="a model; repeat it for several")
    wanted = parser.add_mutually_exclusive_group()
    _add(wanted, "--requirements", metavar="FILE", help="a pip requirements file")
    _add(wanted, "--conda", metavar="FILE", help="a conda environment.yml: its pip: section is installed")
    _add(parser, "--base_image", metavar="IMAGE", default=DEFAULT_BASE_IMAGE, help="default: %(default)s")
    _add(parser, "--python_version", metavar="X.Y", default=DEFAULT_PYTHON, help="the base image's (%(default)s)")
    _add(parser, "--output", metavar="DIR", required=True, help="the folder to write the context in")
    _add(parser, "--force", action="store_true", help="replace --output, once the new context is complete")
    _add(parser, "--build", action="store_true", help="then build it with docker, else podman, else buildah")
    _add(parser, "--tag", metavar="TAG", help="the image's tag (default: <output folder's name>:latest)")
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        return _package(build_parser().parse_args(argv))
    except PackageError as exc:
        print(f"{PROG}: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code


def plan(args: argparse.Namespace) -> Package:
    """What the command line asks for, every input checked."""
    if args.entry_script is None and args.model_dir is None and not args.model:
        raise UsageError("give --entry_script, or the models to serve without one (--model_dir or --model)")
    if not _is_minor_version(args.python_version):
        raise UsageError(f"--python_version {args.python_version}: give the major and minor version, such as 3.11")
    source = inputs.source_folder(args.source_dir) if args.source_dir is not None else None
    script = None
    if args.entry_script is not None:
        source, script = inputs.entry_script(args.entry_script, source)
    models = inputs.all_models(args.model_dir, args.model or [])
    wanted = None
    if args.requirements is not None:
        wanted = requirements.from_requirements_file(args.requirements)
    elif args.conda is not None:
        wanted = requirements.from_conda_file(args.conda)
    sources = [*([source] if source else []), *(model.path for model in models), *([wanted.source] if wanted else [])]
    output = inputs.output_folder(args.output, args.force, sources)
    return Package(
        output=output,
        shown_output=shlex.quote(args.output),
        source_dir=source,
        entry_script=script,
        models=models,
        requirements=wanted,
        base_image=args.base_image,
        python_version=args.python_version,
        tag=args.tag or inputs.default_tag(output),
        force=args.force,
    )


def _package(args: argparse.Namespace) -> int:
    package = plan(args)
    # Before the work: a missing tool is found now, not after minutes of downloads.
    builder = build.build_command(package.output, package.tag, shutil.which) if args.build else None
    if package.requirements is not None and package.requirements.conda_only:
        print(
            f"{PROG}: warning: {package.requirements.source} lists conda packages the image does not install: "
            f"{', '.join(package.requirements.conda_only)}; add pip equivalents to its pip: section, or use "
            "--requirements with a requirements file",
            file=sys.stderr,
        )
    context.write(package, lambda step: print(f"{PROG}: {step}", flush=True))
    shown = package.shown_output
    print(f"{PROG}: wrote {shown}; build it with: docker build -t {shlex.quote(package.tag)} {shown}")
    if builder is None:
        return 0
    print(f"{PROG}: building {package.tag} with {builder.tool}", flush=True)
    status = build.run(builder)
    if status != 0:
        print(
            f"{PROG}: {builder.tool} failed with exit status {status}; the context stays in {shown}",
            file=sys.stderr,
        )
    return status


def _is_minor_version(text: str) -> bool:
    major, dot, minor = text.partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit()


def _add(target: argparse._ActionsContainer, flag: str, **options: Any) -> None:
    # Each flag also in its dashed spelling, as the server's are (cli.py).
    spellings = dict.fromkeys((flag, flag.replace("_", "-")))
    target.add_argument(*spellings, dest=flag.removeprefix("--"), **options)
