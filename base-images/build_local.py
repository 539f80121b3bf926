"""Builds base-images/ on a machine with neither a Docker daemon nor a registry, as the tests and `make image` do.

A Debian rootfs with python3, python3-venv, ca-certificates and libstdc++6, made by mmdebstrap, is imported into
buildah as a local image; our Dockerfiles are then built on it (BASE_IMAGE) by `buildah bud` with chroot isolation,
which needs no daemon and works as root in a container. The rootfs is cached, made once.

    python base-images/build_local.py runtime                          # scoring-runtime:<version>
    python base-images/build_local.py runtime --extras sklearn,onnx    # scoring-runtime-nocode:<version>

`--format docker` matters: the OCI image format has no HEALTHCHECK. Inside a build pip reaches PyPI through this
machine's CA bundle, mounted read-only with a pip.conf naming it; a Docker build on an open network needs neither.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("SCORING_IMAGE_CACHE", "/var/tmp/scoring-runtime-images"))
SUITE = "bookworm"
BASE = f"localhost/scoring-debian-python:{SUITE}"
# libstdc++6: numpy's wheels link to the system's C++ runtime (Python images have it; a minimal Debian does not).
PACKAGES = ("python3", "python3-venv", "ca-certificates", "libstdc++6")
# Documentation, manuals and translations are of no use in a server image: a third of a minimal rootfs.
TRIM = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
MERGED_USR = Path("/usr/share/mmdebstrap/hooks/merged-usr")
TOOLS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap"}


def environment() -> dict[str, str]:
    """buildah's settings: chroot isolation, which needs no user namespaces. Its storage is its default, overlay
    where the kernel allows it (as here); set STORAGE_DRIVER=vfs before buildah first runs where it does not."""
    return {**os.environ, "BUILDAH_ISOLATION": "chroot"}


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def ensure_tools() -> None:
    """buildah and mmdebstrap, installed from Debian's packages when running as root; SystemExit saying what to do
    otherwise."""
    missing = missing_tools()
    if not missing:
        return
    packages = [TOOLS[tool] for tool in missing]
    if os.geteuid() != 0:
        raise SystemExit(f"missing {', '.join(missing)}: install them with `sudo apt-get install {' '.join(packages)}`")
    print(f"installing {', '.join(packages)} from Debian's packages", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, stdout=subprocess.DEVNULL)


def buildah(*args: str, capture: bool = False) -> str:
    done = subprocess.run(["buildah", *args], check=True, env=environment(), text=True, capture_output=capture)
    return done.stdout.strip() if capture else ""


def image_exists(name: str) -> bool:
    found = subprocess.run(["buildah", "images", "--quiet", name], env=environment(), capture_output=True, text=True)
    return found.returncode == 0 and bool(found.stdout.strip())


def base_image() -> str:
    """The local Debian image with Python, made once: mmdebstrap's rootfs, imported with buildah."""
    if image_exists(BASE):
        return BASE
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = CACHE / f"debian-{SUITE}-python.tar"
    if not rootfs.exists():
        partial = rootfs.with_suffix(".partial.tar")
        options = [f"--dpkgopt={option}" for option in TRIM]
        # Merged /usr by mmdebstrap's own hook: otherwise it installs usrmerge, and with it 50 MB of Perl.
        hooks = [f"--hook-dir={MERGED_USR}"] if MERGED_USR.is_dir() else []
        command = ["mmdebstrap", "--variant=essential", f"--include={','.join(PACKAGES)}", *options, *hooks, SUITE]
        subprocess.run([*command, str(partial)], check=True, stdout=subprocess.DEVNULL)
        partial.rename(rootfs)
    container = buildah("from", "scratch", capture=True)
    try:
        buildah("add", container, str(rootfs), "/")
        buildah("config", "--cmd", "python3", container)
        buildah("commit", "--quiet", "--format", "docker", container, BASE)
    finally:
        buildah("rm", container, capture=True)
    return BASE


def build(
    dockerfile: Path, tag: str, build_args: dict[str, str], context: Path = ROOT, labels: dict[str, str] | None = None
) -> str:
    """`buildah bud` of `dockerfile` on the local base image; returns the tag."""
    base = base_image()
    with tempfile.TemporaryDirectory() as scratch:
        pip_conf = Path(scratch) / "pip.conf"
        pip_conf.write_text(f"[global]\ncert = {CA_BUNDLE}\n")
        arguments = {"BASE_IMAGE": base, **build_args}
        command = ["bud", "--isolation", "chroot", "--format", "docker", "-f", str(dockerfile)]
        command += [f"--build-arg={name}={value}" for name, value in arguments.items()]
        command += [f"--label={name}={value}" for name, value in (labels or {}).items()]
        if CA_BUNDLE.exists():
            command += [
                "--volume",
                f"{CA_BUNDLE.parent}:{CA_BUNDLE.parent}:ro",
                "--volume",
                f"{pip_conf}:/etc/pip.conf:ro",
            ]
        buildah(*command, "-t", tag, str(context))
    return tag


def image_size(name: str) -> int:
    """The image's size in bytes: its files, uncompressed, as a container of it sees them."""
    container = buildah("from", "--pull-never", name, capture=True)
    try:
        mounted = buildah("mount", container, capture=True)
        return sum(path.lstat().st_size for path in Path(mounted).rglob("*") if not path.is_dir() or path.is_symlink())
    finally:
        buildah("rm", container, capture=True)


def version() -> str:
    """Our version, as the wheel built into the image has it."""
    text = (ROOT / "scoring_runtime" / "_version.py").read_text()
    match = re.search(r"__version__ = \"([^\"]+)\"", text)
    if match is None:
        raise SystemExit("scoring_runtime/_version.py holds no __version__")
    return match.group(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "image", choices=sorted(path.name for path in HERE.iterdir() if (path / "Dockerfile").is_file())
    )
    parser.add_argument("--extras", default="", help="extras to install, e.g. sklearn,onnx")
    parser.add_argument("--tag", help="image name (default scoring-<image>[-nocode]:<our version>)")
    args = parser.parse_args(argv)
    ensure_tools()
    # The names deploy/ and `scoring-runtime package` expect: the server alone, or with model frameworks.
    tag = args.tag or f"scoring-{args.image}{'-nocode' if args.extras else ''}:{version()}"
    build(HERE / args.image / "Dockerfile", tag, {"EXTRAS": args.extras})
    print(f"built {tag} with buildah on {BASE}")


if __name__ == "__main__":
    main()
