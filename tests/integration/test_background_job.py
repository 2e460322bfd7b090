"""The background_job role's follow: a job that fails fails the play with the
job's own message (async_status under failed_when once hid it: the next task
then failed on a missing key, far from the cause); every progress line is
shown once, including those that come between two rounds."""
from __future__ import annotations

import os
import subprocess

from .conftest import ROOT, VENV_BIN

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: A module that fails, in the background
      ansible.builtin.command: /bin/sh -c 'echo working >> {progress}; sleep 1; echo the cause >&2; exit 3'
      async: 60
      poll: 0
      register: job
    - name: Follow it
      ansible.builtin.include_role:
        name: background_job
        tasks_from: follow
      vars:
        background_job_job: "{{{{ job }}}}"
        background_job_progress_file: {progress}
        background_job_what: the failing job
        background_job_poll: 1
    - name: Never reached
      ansible.builtin.debug:
        msg: REACHED
"""


def _play(tmp_path, text: str) -> subprocess.CompletedProcess:
    play = tmp_path / "play.yml"
    play.write_text(text.format(progress=tmp_path / "progress"))
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}", str(play)],
        cwd=ROOT, env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                       "ANSIBLE_NOCOLOR": "1"},
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_failed_background_job_fails_with_its_message(tmp_path):
    proc = _play(tmp_path, PLAY)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "the failing job: non-zero return code" in proc.stdout, proc.stdout[-3000:]
    assert "REACHED" not in proc.stdout


def test_every_progress_line_is_shown_once_even_those_between_two_rounds(tmp_path):
    """Five lines within a tenth of a second each, and rounds a second apart:
    all five are printed, none twice (a round once printed only the newest)."""
    writes = "; ".join(f"echo line{i} >> {{progress}}; sleep 0.1" for i in range(1, 6))
    proc = _play(tmp_path, PLAY.replace("echo working >> {progress}; sleep 1; echo the cause >&2; exit 3", writes + "; sleep 2")
                 .replace("the failing job", "the chatty job").replace("A module that fails", "A module that talks"))
    assert proc.returncode == 0, proc.stdout[-3000:]
    for i in range(1, 6):
        assert proc.stdout.count(f'"line{i}"') == 1, proc.stdout[-3000:]
