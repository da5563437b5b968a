"""The command line's entry: whatever goes wrong before a command starts is one line and a non-zero exit."""
import pytest

import advnets.cli as cli


def test_ctrl_c_while_the_commands_load_is_one_line(monkeypatch, capsys):
    # the command modules (and torch) load inside build_parser, the first ~1.5 s of every command
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["sample", "runs/x"]) == 130
    assert capsys.readouterr().err == "advnets: interrupted\n"


def test_an_unknown_command_is_argparse_usage_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
