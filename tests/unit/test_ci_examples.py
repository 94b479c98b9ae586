"""examples/ci: the pipeline examples are valid against their official JSON schemas
(the copies check-jsonschema ships, so no network is needed), and run `make smoke`."""

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ha.paths import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "ci"
SCHEMAS = {"github-actions.yml": "vendor.github-workflows", "gitlab-ci.yml": "vendor.gitlab-ci"}
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def validate(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_example_has_a_schema() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir()) == sorted(SCHEMAS)


@pytest.mark.parametrize(("name", "schema"), SCHEMAS.items())
def test_the_example_is_valid_and_runs_make_smoke_with_a_junit_report(
    name: str, schema: str
) -> None:
    result = validate(EXAMPLES / name, schema)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (EXAMPLES / name).read_text()
    assert "make -C airflow-ha smoke" in text
    assert "JUNIT=" in text
    assert "install-host-tools.sh" in text


@pytest.mark.parametrize(
    ("name", "schema", "old", "new"),
    [
        ("github-actions.yml", "vendor.github-workflows", "runs-on:", "runs_on:"),
        ("gitlab-ci.yml", "vendor.gitlab-ci", "when: always", "when: sometimes"),
    ],
)
def test_the_schema_check_catches_a_broken_example(
    tmp_path: Path, name: str, schema: str, old: str, new: str
) -> None:
    broken = tmp_path / name
    broken.write_text((EXAMPLES / name).read_text().replace(old, new))
    result = validate(broken, schema)
    assert result.returncode != 0, result.stdout
