"""The CI examples are valid as the systems that read them would judge them (offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).parent.parent / "examples" / "ci"
BIN = Path(sys.executable).parent


def _load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _runs(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_github_workflow_is_valid_and_least_privileged() -> None:
    workflow = _load("github-actions.yml")
    assert workflow["permissions"] == {"contents": "read", "checks": "write"}
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    installs = [step["run"] for step in steps if "pip install" in step.get("run", "")]
    assert installs
    assert all('pip install "$AFETCH"' in run for run in installs)
    assert workflow["env"]["AFETCH"].startswith("afetch-cli @ https://")  # not from the index
    assert any("--github" in step.get("run", "") for step in steps)
    # GitHub's own workflow schema, as check-jsonschema vendors it (no network).
    _runs([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
           str(EXAMPLES / "github-actions.yml")])  # fmt: skip


def test_the_kubernetes_job_is_valid_with_a_volume_per_pod() -> None:
    job = _load("k8s-indexed-job.yaml")
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert "ephemeral" in volumes["out"]  # one claim per pod, created with it
    assert job["spec"]["completionMode"] == "Indexed"
    _runs([str(BIN / "kubernetes-validate"), "--strict", str(EXAMPLES / "k8s-indexed-job.yaml")])
