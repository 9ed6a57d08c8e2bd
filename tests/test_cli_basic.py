import subprocess
import sys

from sim import __version__
from sim.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "dsqsim" in capsys.readouterr().out


def test_unknown_command_exits_2():
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "no-such-command"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
