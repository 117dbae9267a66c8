"""The pytest plugin, run in a child pytest: options, configure-time errors, parametrization."""

from __future__ import annotations

import pytest


def test_unknown_board_is_a_usage_error_before_any_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never(): raise AssertionError('must not run')")
    result = pytester.runpytest_subprocess("--board", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown board 'nope'*host*"])


def test_broken_boards_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    boards = pytester.makefile(".yaml", boards="boards:\n  x:\n    kind: host\n    bogus: 1\n")
    pytester.makepyfile("def test_never(): raise AssertionError('must not run')")
    result = pytester.runpytest_subprocess("--boards-file", str(boards), "--board", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*boards.yaml:4: unknown field 'boards.x.bogus'*"])


def test_reset_kind_is_parametrized_from_the_board(pytester: pytest.Pytester) -> None:
    boards = pytester.makefile(
        ".yaml", boards="boards:\n  x:\n    kind: host\n    reset_kinds: [rpc, power]\n"
    )
    pytester.makepyfile(
        """
        import pytest
        def test_kind(reset_kind):
            assert reset_kind in ("rpc", "power")
        @pytest.mark.reset_kind("hard")
        def test_needs_hard():
            raise AssertionError("must be skipped")
        """
    )
    result = pytester.runpytest_subprocess("--boards-file", str(boards), "--board", "x", "-v")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*test_kind?rpc?*PASSED*", "*test_kind?power?*PASSED*"])
    result.stdout.fnmatch_lines(["*board: x (kind host; reset kinds rpc, power)*"])
