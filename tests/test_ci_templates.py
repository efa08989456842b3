"""The CI templates in examples/ci: what they install, publish and do with each exit code.

The exit handling is the templates' own shell, run by bash against a `heisen`
on PATH that exits with the code under test.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

CI = Path(__file__).parent.parent / "examples" / "ci"
README = Path(__file__).parent.parent / "README.md"

# A stand-in with heisen's contract: exits $FAKE_EXIT (0 for 4 with --allow-inconclusive),
# records its arguments, and appends to $GITHUB_STEP_SUMMARY as `heisen run --ci` does.
FAKE_HEISEN = """#!/bin/sh
echo "$@" > "$FAKE_ARGS"
mkdir -p heisen-run && echo "# heisen summary" > heisen-run/summary.md
if [ -n "$GITHUB_STEP_SUMMARY" ]; then cat heisen-run/summary.md >> "$GITHUB_STEP_SUMMARY"; fi
for arg in "$@"; do
  if [ "$arg" = "--allow-inconclusive" ] && [ "$FAKE_EXIT" = 4 ]; then exit 0; fi
done
exit "$FAKE_EXIT"
"""

PIP_INSTALL = re.compile(r"pip install (.+)")


def _github() -> dict[str, Any]:
    return yaml.safe_load((CI / "github-actions.yml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _gitlab() -> dict[str, Any]:
    return yaml.safe_load((CI / "gitlab-ci.yml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _github_steps() -> list[dict[str, Any]]:
    return _github()["jobs"]["heisen"]["steps"]  # type: ignore[no-any-return]


def _github_step(name: str) -> dict[str, Any]:
    return next(step for step in _github_steps() if step.get("name") == name)


def _gitlab_script(containing: str) -> str:
    return next(line for line in _gitlab()["races"]["script"] if containing in line)  # type: ignore[no-any-return]


def _install_lines() -> list[str]:
    lines = [_github_step("Install heisen")["run"], _gitlab_script("pip install")]
    return [line for line in lines if "pip install" in line]


def test_each_template_installs_heisen_from_its_repository_not_the_pypi_name() -> None:
    lines = _install_lines()
    assert len(lines) == 2
    for line in lines:
        match = PIP_INSTALL.search(line)
        assert match is not None, line
        requirement = match.group(1).strip().strip("'\"")
        name, _, source = requirement.partition(" @ ")
        assert name.split("[")[0] != "heisen", f"bare PyPI name installed: {line}"
        assert source.startswith(("git+https://", "./", "/")), f"not a git URL or path: {line}"


def test_readme_ci_section_installs_as_the_templates_do() -> None:
    section = README.read_text(encoding="utf-8").split("## CI", 1)[1].split("\n## ", 1)[0]
    requirement = PIP_INSTALL.search(_install_lines()[0])
    assert requirement is not None
    expected = requirement.group(1).replace("${HEISEN_REF}", "v0.1.0")
    assert " ".join(expected.split()) in " ".join(section.split())
    assert "pip install 'heisen[embedded]'" not in section


def test_github_workflow_may_write_checks_and_keeps_the_run() -> None:
    assert _github()["permissions"]["checks"] == "write"
    upload = next(
        s for s in _github_steps() if str(s.get("uses", "")).startswith("actions/upload-artifact")
    )
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "heisen-run"
    junit = next(s for s in _github_steps() if "junit" in str(s.get("uses", "")))
    assert junit["if"] == "always()"


def test_gitlab_job_keeps_the_run_and_its_junit() -> None:
    artifacts = _gitlab()["races"]["artifacts"]
    assert artifacts["when"] == "always"
    assert "heisen-run/" in artifacts["paths"]
    assert artifacts["reports"]["junit"] == "heisen-run/junit.xml"


@pytest.fixture
def fake_heisen(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "heisen"
    script.write_text(FAKE_HEISEN, encoding="utf-8")
    script.chmod(0o755)
    return bin_dir


def _run_snippet(
    snippet: str, bin_dir: Path, code: int, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    work = bin_dir.parent / "work"
    work.mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", "-e", "-c", snippet],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=30,
        env={
            "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
            "FAKE_EXIT": str(code),
            "FAKE_ARGS": str(bin_dir.parent / "args"),
            **env,
        },
    )


def _templates() -> list[tuple[str, str, dict[str, str]]]:
    github = _github()
    gitlab = _gitlab()
    return [
        ("github", _github_step("Run the pipeline")["run"], dict(github["jobs"]["heisen"]["env"])),
        ("gitlab", _gitlab_script("heisen run"), dict(gitlab["races"]["variables"])),
    ]


@pytest.mark.parametrize("template", ["github", "gitlab"])
@pytest.mark.parametrize(
    ("code", "passes", "says"),
    [
        (0, True, "no race found"),
        (1, False, "found a race"),
        (2, False, "not a race"),
        (3, False, "not a race"),
        (4, False, "inconclusive"),
        (130, False, "interrupted"),
    ],
)
def test_exit_code_decides_the_job(
    template: str, code: int, passes: bool, says: str, fake_heisen: Path
) -> None:
    _, snippet, env = next(t for t in _templates() if t[0] == template)
    done = _run_snippet(snippet, fake_heisen, code, env)
    assert (done.returncode == 0) is passes, done
    assert says in done.stdout
    assert "--ci" in (fake_heisen.parent / "args").read_text()


@pytest.mark.parametrize("template", ["github", "gitlab"])
def test_inconclusive_passes_only_when_the_team_opts_in(template: str, fake_heisen: Path) -> None:
    _, snippet, env = next(t for t in _templates() if t[0] == template)
    assert env["HEISEN_ALLOW_INCONCLUSIVE"] == "false"
    done = _run_snippet(snippet, fake_heisen, 4, {**env, "HEISEN_ALLOW_INCONCLUSIVE": "true"})
    assert done.returncode == 0, done
    assert "--allow-inconclusive" in (fake_heisen.parent / "args").read_text()
    still_a_race = _run_snippet(
        snippet, fake_heisen, 1, {**env, "HEISEN_ALLOW_INCONCLUSIVE": "true"}
    )
    assert still_a_race.returncode == 1


@pytest.mark.parametrize("code", [0, 1])
def test_github_step_summary_gets_summary_md_once(code: int, fake_heisen: Path) -> None:
    step_summary = fake_heisen.parent / "step_summary.md"
    step_summary.write_text("", encoding="utf-8")
    env = {**dict(_github()["jobs"]["heisen"]["env"]), "GITHUB_STEP_SUMMARY": str(step_summary)}
    _run_snippet(_github_step("Run the pipeline")["run"], fake_heisen, code, env)
    append = _github_step("Append the summary to the run's page")
    assert append["if"] == "always()"
    done = _run_snippet(append["run"], fake_heisen, code, env)
    assert done.returncode == 0, done
    assert step_summary.read_text(encoding="utf-8").count("# heisen summary") == 1
