"""A Markdown file's examples, as a user pastes them: the fenced ```bash and ```yaml blocks, and a
shell that runs them one after another in one working directory, the way one terminal would.

Blocks are read when the tests are collected, so an example added to README.md is run without a
change here. A block that cannot run where the tests run says so in the Markdown itself, on the
line before its fence (an HTML comment, invisible on GitHub):

    <!-- readme-test: skip: needs the S3 server of tests/integration/data -->

and the tests list every such block with its reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_MARK = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.*?)\s*-->", re.DOTALL)
RUNNABLE = ("bash", "sh", "yaml")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and, if marked, why it is not run."""

    path: Path
    line: int
    lang: str
    text: str
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where} ({self.lang})"


def blocks(path: Path) -> list[Block]:
    """The ```bash, ```sh and ```yaml blocks of ``path`` in order (other languages, e.g. a
    diagram, are prose)."""
    text = path.read_text()
    found = []
    for m in _FENCE.finditer(text):
        lang = m.group(1).lower()
        if lang not in RUNNABLE:
            continue
        before = text[: m.start()].rstrip().rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        line = text.count("\n", 0, m.start()) + 1
        skip = mark.group(1) if mark else None
        if mark and not skip:
            skip = "(no reason given)"
        found.append(Block(path, line, "bash" if lang == "sh" else lang, m.group(2), skip))
    return found


# Every name a block sets (UUID=..., an export) is carried to the next block, as in one terminal:
# the names new since the shell started are written out with `declare -p` after each block.
_PROLOGUE = """\
set -euo pipefail
__before="$(compgen -v)"
[ -f "$EB_README_DIR/env.sh" ] && source "$EB_README_DIR/env.sh"
[ -f "$EB_README_DIR/vars.sh" ] && source "$EB_README_DIR/vars.sh"
trap '__keep' EXIT
__keep() {
  for __v in $(compgen -v); do
    case "$__v" in __*|BASH*|FUNCNAME|PIPESTATUS|LINENO|RANDOM|SECONDS|_) continue ;; esac
    grep -qxF -- "$__v" <<<"$__before" || declare -p "$__v"
  done >"$EB_README_DIR/vars.sh.new" 2>/dev/null && mv "$EB_README_DIR/vars.sh.new" "$EB_README_DIR/vars.sh"
}
"""


@dataclass
class Terminal:
    """A directory and the environment a user has after pasting ``env.sh`` (the exports
    hack/up.sh printed); :meth:`run` runs a script there as the next thing typed."""

    workdir: Path
    base_env: Mapping[str, str]

    def set_exports(self, lines: list[str]) -> None:
        (self.workdir / "env.sh").write_text("".join(f"{line}\n" for line in lines))

    def run(self, script: str, timeout: float, reap: bool = True) -> subprocess.CompletedProcess[str]:
        """``script`` under ``set -euo pipefail``, stdout and stderr together (as seen). With
        ``reap``, what it left running in the background (a server a failed example did not
        stop) is ended with it; hack/up.sh's port-forward must outlive it (``reap=False``)."""
        body = self.workdir / ".block.sh"
        body.write_text(script if script.endswith("\n") else script + "\n")
        env = dict(self.base_env)
        env["EB_README_DIR"] = str(self.workdir)
        log = self.workdir / ".block.out"
        with log.open("w") as sink:  # a file, not a pipe: a server left in the background keeps a pipe open
            proc = subprocess.Popen(
                ["bash", "-c", _PROLOGUE + f'source "{body}"\n'],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so that it can be ended as a whole
            )
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _end_group(proc.pid)
                proc.wait()
            finally:
                if reap:
                    _end_group(proc.pid)
        out = log.read_text(errors="replace")
        if timed_out:
            out += f"\n[timed out after {timeout:.0f} s]"
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, None)


def _end_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)


def shown(proc: subprocess.CompletedProcess[str], script: str) -> str:
    """What a failure message shows: the script, its exit status and what it printed."""
    out = proc.stdout or ""
    return f"--- script\n{script.rstrip()}\n--- exit {proc.returncode}, output:\n{out[-6000:]}"


def base_environment(kubeconfig: str) -> dict[str, str]:
    """This process's environment with the cluster the tests use (hack/up.sh takes the cluster in
    ``KUBECONFIG`` when it answers, as the README says)."""
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env.pop("EB_URL", None)
    env.pop("EB_TOKEN", None)
    return env
