"""The request bodies: a text file of one body per line, as Azure ML's profiler took them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from scoring_runtime.profiling.errors import ProfileError


@dataclass(frozen=True)
class Dataset:
    path: Path
    bodies: tuple[bytes, ...]
    blank_lines: int  # skipped: a blank line is a separator left in by the tool that wrote the file, not a body

    @property
    def average_bytes(self) -> float:
        return sum(len(body) for body in self.bodies) / len(self.bodies)


def is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def load(path: Path, content_type: str) -> Dataset:
    """Every non-blank line of `path`, each checked as JSON when the content type is JSON; a line that is not is
    reported by its number, so that the file can be fixed before a server is started for nothing."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ProfileError(f"--input-dataset {path} is a folder: give a file of request bodies, one per line")
    except FileNotFoundError:
        raise ProfileError(f"--input-dataset {path} does not exist")
    except OSError as exc:
        raise ProfileError(f"cannot read --input-dataset {path}: {exc.strerror or exc}")
    checked = is_json(content_type)
    bodies: list[bytes] = []
    blank = 0
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{path} line {number} is not UTF-8 (byte {exc.start + 1} of the line)")
        if not text.strip():
            blank += 1
            continue
        if checked:
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ProfileError(
                    f"{path} line {number} is not valid JSON ({exc.msg}); give one JSON body per line, or "
                    "--content-type for bodies of another kind"
                )
        bodies.append(line)
    if not bodies:
        raise ProfileError(f"--input-dataset {path} has no request bodies: write one body per line")
    return Dataset(path, tuple(bodies), blank)
