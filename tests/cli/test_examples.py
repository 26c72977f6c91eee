"""The examples: CI files valid as the systems that read them judge them (offline), and
the demo ``make run`` runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.conftest import check_record

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "ci"
BIN = Path(sys.executable).parent


def _load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _runs(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_github_workflow_is_valid_and_least_privileged() -> None:
    """The example workflow validates against GitHub's schema and asks for least privilege."""
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
    """The example Indexed Job validates strictly and gives each pod a volume."""
    job = _load("k8s-indexed-job.yaml")
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert "ephemeral" in volumes["out"]  # one claim per pod, created with it
    assert job["spec"]["completionMode"] == "Indexed"
    _runs([str(BIN / "kubernetes-validate"), "--strict", str(EXAMPLES / "k8s-indexed-job.yaml")])


def test_the_demo_fetches_its_local_list_with_failures_on_purpose() -> None:
    """make run: 26 records from the local server, 4 failing as the list intends, exit 0."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES.parent / "demo.py")],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    records = [check_record(orjson.loads(line)) for line in proc.stdout.splitlines()]
    assert len(records) == 26
    failed = [str(r.get("id") or r["status"] or r["error"]["type"]) for r in records if not r["ok"]]
    assert sorted(failed) == ["404", "503", "connect", "too-slow"]
    assert "afetch: 26 requests, 22 ok, 4 not ok" in proc.stderr.decode()
