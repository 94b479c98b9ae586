"""Every training lab, on the test cluster, as CI proves them: the check fails
before the lab is done (it can tell), `lab solve` does the lab as a trainee
would, and the check passes after."""

from pathlib import Path

import pytest

from airflow_ha.errors import ExitCode
from airflow_ha.labs import LABS

from .conftest import Cluster

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("number", [lab.number for lab in LABS])
def test_the_lab_can_be_solved_and_its_check_tells(
    cluster: Cluster, tmp_path: Path, number: int
) -> None:
    work = ("--work-dir", str(tmp_path))
    before = cluster.cli("lab", "check", str(number), *work)
    assert before.code == ExitCode.VERIFY, f"lab {number} passed before it was done:\n{before}"
    assert (
        before.stderr.strip()
        .splitlines()[-1]
        .startswith(f"airflow-ha: error: lab {number}: not done yet: ")
    ), str(before)
    assert "[ ]" in before.stdout

    solved = cluster.cli("lab", "solve", str(number), *work)
    assert solved.code == 0, f"lab {number} could not be solved:\n{solved}"
    assert "[ ]" not in solved.stdout, str(solved)

    after = cluster.cli("lab", "check", str(number), *work)
    assert after.code == 0, str(after)
    assert after.stdout.strip().splitlines()[-1].endswith("): done")


def test_an_unknown_lab_lists_the_labs(cluster: Cluster) -> None:
    result = cluster.cli("lab", "check", "99")
    assert result.code == ExitCode.USAGE, str(result)
    assert result.stderr.strip() == "airflow-ha: error: no lab '99'; the labs are: " + ", ".join(
        f"{lab.number} ({lab.slug})" for lab in LABS
    )


def test_every_lab_has_its_guide() -> None:
    from airflow_ha.labs.base import guide

    missing = [str(guide(lab)) for lab in LABS if not guide(lab).is_file()]
    assert missing == []
