"""core/temporal.py's `run_then_exit`: how the worker and the API end (exit codes, what runs before
leaving), each case a process of its own, since it leaves by `os._exit`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

CASES = {
    "ended": ("None", 0, ""),
    "refused": ("sys.exit('WEBHOOKS_X is refused: set it to a number')", 1, "WEBHOOKS_X is refused"),
    "code": ("sys.exit(3)", 3, ""),
    "crashed": ("1 / 0", 1, "ZeroDivisionError"),
}


def run(main: str, before_leaving: str) -> subprocess.CompletedProcess[str]:
    code = f"""
import os, signal, sys, time
from core.temporal import run_then_exit
def main():
    {main}
def before_leaving():
    {before_leaving}
run_then_exit(main, before_leaving=before_leaving)
print("not reached")
"""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


@pytest.mark.parametrize("case", CASES)
def test_the_code_is_the_way_main_ended_and_before_leaving_always_runs(case: str) -> None:
    main, code, said = CASES[case]
    ended = run(main, "print('exported', flush=True)")
    assert ended.returncode == code, ended.stderr
    assert ended.stdout == "exported\n"
    assert said in ended.stderr


def test_a_second_stop_signal_while_leaving_does_not_cut_it_short() -> None:
    """The second SIGTERM of an impatient supervisor, while the last spans are being exported."""
    ended = run(
        "None", "os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.3); print('exported', flush=True)"
    )
    assert (ended.returncode, ended.stdout) == (0, "exported\n"), ended.stderr


def test_a_failure_while_leaving_is_said_and_still_leaves() -> None:
    ended = run("None", "raise RuntimeError('the collector is gone')")
    assert ended.returncode == 1
    assert "RuntimeError: the collector is gone" in ended.stderr
    assert "not reached" not in ended.stdout
