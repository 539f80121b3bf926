from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from scoring_runtime.app.lifecycle import load_user_script
from scoring_runtime.config import load_settings
from scoring_runtime.contract.loading import run_init
from scoring_runtime.contract.script import Mode, UserScript
from scoring_runtime.errors import BadRequest, RunFailed, ScriptLoadError
from tests.helpers import SCRIPTS


def load(script: str | Path | None, **settings: str) -> UserScript:
    entry = None if script is None else str(script if isinstance(script, Path) else SCRIPTS / script)
    loaded, _ = load_settings({"entry_script": entry, **settings}, environ={})
    return load_user_script(loaded)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("no_init.py", "User script at {path} does not have a init() function defined."),
        ("no_run.py", "User script at {path} does not have a run() function defined."),
        ("run_varargs.py", "run() cannot accept positional-only arguments, *args, or **kwargs."),
        ("run_noargs.py", "run() needs to accept an argument for input data."),
        ("run_only_headers.py", 'run() needs to accept an argument other than "request_headers".'),
        ("raw_and_schema.py", "run() cannot be decorated with both @rawhttp and @input_schema"),
    ],
)
def test_validation_messages(script: str, message: str, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ScriptLoadError) as info:
        load(script)
    expected = message.format(path=SCRIPTS / script)
    assert str(info.value) == expected
    assert expected in caplog.messages


def test_import_failure_is_logged_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ScriptLoadError, match="ModuleNotFoundError"):
        load("import_error.py")
    assert "Failed to import user script because it raised an unhandled exception" in caplog.messages
    assert any("No module named 'a_module_that_does_not_exist'" in m for m in caplog.messages)
    assert "entry_module" not in sys.modules or sys.modules["entry_module"].__file__ != str(SCRIPTS / "import_error.py")


def test_syntax_error_is_a_load_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    script = tmp_path / "bad_indent.py"
    script.write_text("def init():\n    pass\n\n\ndef run(data):\n        x = 1\n    return data\n")
    with pytest.raises(ScriptLoadError):
        load(script)
    assert any("IndentationError: unindent does not match any outer indentation level" in m for m in caplog.messages)


def test_missing_script_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ScriptLoadError, match="Entry script not found"):
        load(tmp_path / "nope.py")
    assert "No such file or directory." in caplog.messages


def test_modes_and_signature() -> None:
    plain = load("plain_default.py")
    assert (plain.mode, plain.parameters, plain.required, plain.wants_headers) == (
        Mode.PLAIN,
        ("data", "color"),
        frozenset({"data"}),
        False,
    )
    typed = load("typed_num.py")
    assert (typed.mode, typed.parameters, typed.wants_headers) == (Mode.TYPED, ("num", "color"), True)
    assert load("raw_echo.py").mode is Mode.RAW
    assert load("async_run.py").is_async and load("typed_async.py").is_async
    assert not plain.is_async


def test_rawhttp_on_a_helper_switches_run_to_raw_like_the_reference() -> None:
    assert load("raw_helper.py").mode is Mode.RAW


def test_driver_module_run_is_used_and_outer_init(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    script = load("driver.py")
    assert script.mode is Mode.TYPED
    run_init(script, None)
    assert script.module.driver_module.inner_init_called
    assert script.call({"num": 10})[0] == 20  # the driver's own run() (which adds 7) is bypassed
    assert any(m.startswith(f"Found driver script at {SCRIPTS / 'driver.py'}") for m in caplog.messages)


def test_main_fallback_without_entry_script(caplog: pytest.LogCaptureFixture) -> None:
    sys.modules.pop("main", None)
    script = load(None, app_root=str(SCRIPTS / "mainapp"))
    assert script.call({"num": 10})[0] == 20
    sys.modules.pop("main", None)


def test_no_main_module(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sys.modules.pop("main", None)
    with pytest.raises(ScriptLoadError, match="No score script found"):
        load(None, app_root=str(tmp_path))
    assert "No score script found. Expected score script main.py." in caplog.messages
    assert "Current contents of AML_APP_ROOT: []" in caplog.messages


def test_each_load_gets_its_own_registered_module() -> None:
    first, second = load("env_report.py"), load("env_report.py")
    assert first.module is not second.module
    assert first.module.__name__ != second.module.__name__
    assert sys.modules[second.module.__name__] is second.module
    assert first.call({"data": ""})[0]["pickled"] == 5


def test_call_classifies_failures(caplog: pytest.LogCaptureFixture) -> None:
    typed = load("typed_numpy.py")
    with pytest.raises(BadRequest, match=r"^Invalid value for the 'data' parameter: Invalid input array"):
        typed.call({"data": [[1.0, 2.0]]})
    with pytest.raises(RunFailed):
        typed.call({"data": [[-1.0, 2.0, 3.0]]})
    assert any(m.startswith("Encountered Exception: Traceback") for m in caplog.messages)
    raises = load("raises.py")
    with pytest.raises(RunFailed):
        raises.call({"data": "1"})
    with pytest.raises(RunFailed):
        raises.call({"data": "exit"})  # SystemExit from run() is a failed call, not a dead worker


def test_init_failure_logs_model_dir_tree(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.npy").write_text("")
    script = load("init_fails.py")
    with pytest.raises(ScriptLoadError, match="model file is corrupt"):
        run_init(script, str(tmp_path / "m"))
    assert "User's init function failed" in caplog.messages
    assert "Model Directory Contents:" in caplog.messages
    assert "    weights.npy" in caplog.messages


def test_source_directory_and_script_folder_are_importable() -> None:
    script = load(SCRIPTS / "src_app" / "score.py", app_root=str(SCRIPTS / "src_app"), source_dir="src")
    assert script.call({"data": ""})[0] == {"key": "value"}
    assert load("sibling_import.py").call({"data": "4"})[0] == 8
