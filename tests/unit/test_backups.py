"""backups.py: what a backup file holds, and when a restore is refused."""

import gzip
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_ha.backups import (
    TRAILER_PREFIX,
    BadBackupError,
    Manifest,
    RowCounter,
    backup_name,
    count_mismatches,
    fernet_fingerprint,
    restore_problems,
    summary,
)
from airflow_ha.errors import ClusterError
from airflow_ha.metadata_db import read_manifest

KEY = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
OTHER_KEY = "YmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm8="

# What mysqldump --skip-extended-insert writes, trimmed.
DUMP = b"""-- MySQL dump 10.13
/*!40101 SET NAMES utf8mb4 */;
DROP TABLE IF EXISTS `alembic_version`;
CREATE TABLE `alembic_version` (
  `version_num` varchar(32) NOT NULL
) ENGINE=InnoDB;
INSERT INTO `alembic_version` VALUES ('a3c7f2d1e4b5');
CREATE TABLE `dag_run` (
  `id` int NOT NULL AUTO_INCREMENT
) ENGINE=InnoDB;
INSERT INTO `dag_run` VALUES (1,'x','INSERT INTO `variable` VALUES (9)');
INSERT INTO `dag_run` VALUES (2,'y','a\\nb');
CREATE TABLE `variable` (
  `id` int NOT NULL
) ENGINE=InnoDB;
-- Dump completed
"""


def manifest(**changes: object) -> Manifest:
    values: dict[str, object] = {
        "created": "2026-12-02T14:00:00+00:00",
        "project": "airflow-ha",
        "fernet_fingerprint": fernet_fingerprint(KEY),
        "alembic_revision": "a3c7f2d1e4b5",
        "rows": {"dag_run": 2, "variable": 0},
    }
    values.update(changes)
    return Manifest(**values)  # type: ignore[arg-type]


def counted(dump: bytes) -> RowCounter:
    counter = RowCounter()
    for line in dump.splitlines(keepends=True):
        counter.feed(line)
    return counter


def test_rows_are_counted_per_table_including_empty_tables() -> None:
    counter = counted(DUMP)
    assert counter.rows == {"alembic_version": 1, "dag_run": 2, "variable": 0}
    assert counter.alembic_revision == "a3c7f2d1e4b5"


def test_rows_count_without_a_create_table_and_no_revision_is_empty() -> None:
    counter = counted(b"INSERT INTO `log` VALUES (1);\nINSERT INTO `log` VALUES (2);\n")
    assert counter.rows == {"log": 2}
    assert counter.alembic_revision == ""


def test_an_insert_inside_a_value_is_not_a_row() -> None:
    # The first dag_run row quotes an INSERT into `variable`: still no variable row.
    assert counted(DUMP).rows["variable"] == 0


def test_the_manifest_round_trips_through_its_trailer_line() -> None:
    original = manifest()
    line = original.trailer()
    assert line.startswith(TRAILER_PREFIX)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert Manifest.from_trailer(line) == original
    assert original.total_rows == 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"-- Dump completed on 2026-12-02\n",
         "^it does not end with the backup's manifest: an incomplete dump$"),
        (TRAILER_PREFIX + b"{not json\n", "^its manifest is not JSON$"),
        (TRAILER_PREFIX + b'{"format": 2}\n', "^its manifest is not of format 1$"),
        (TRAILER_PREFIX + b"[1]\n", "^its manifest is not of format 1$"),
        (TRAILER_PREFIX + b'{"format": 1, "created": "x"}\n',
         "^its manifest does not match format 1: .*missing"),
    ],
)  # fmt: skip
def test_a_bad_trailer_is_refused_with_its_reason(line: bytes, reason: str) -> None:
    with pytest.raises(BadBackupError, match=reason):
        Manifest.from_trailer(line)


def test_the_fingerprint_tells_keys_apart_without_showing_them() -> None:
    assert fernet_fingerprint(KEY) == fernet_fingerprint(KEY)
    assert fernet_fingerprint(KEY) != fernet_fingerprint(OTHER_KEY)
    assert len(fernet_fingerprint(KEY)) == 16
    assert fernet_fingerprint(KEY) not in KEY


def test_names_are_in_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        taken = datetime(2026, 12, 2, 14, 0, 0, tzinfo=UTC)
        assert backup_name("p", taken) == "p-20261202T140000Z.sql.gz"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_names_sort_by_time_in_utc() -> None:
    taken = datetime(2026, 12, 2, 15, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert backup_name("p", taken) == "p-20261202T140405Z.sql.gz"
    assert backup_name("p", taken, "before-restore") == "p-20261202T140405Z-before-restore.sql.gz"
    assert backup_name("p", datetime(2026, 1, 1, tzinfo=UTC)) < backup_name("p", taken)


def test_a_restore_with_the_same_key_and_no_active_run_may_go_on() -> None:
    assert restore_problems(manifest(), KEY, 0, force=False) == []


def test_another_fernet_key_is_refused_even_with_force() -> None:
    problems = restore_problems(manifest(), OTHER_KEY, 0, force=True)
    assert problems == [
        f"it was taken with Fernet key {fernet_fingerprint(KEY)}, and AIRFLOW_FERNET_KEY "
        f"in .env is {fernet_fingerprint(OTHER_KEY)}: its connections and variables could "
        "not be decrypted; put the key of that time back in .env"
    ]
    assert OTHER_KEY not in problems[0]


def test_active_runs_are_refused_unless_forced() -> None:
    problems = restore_problems(manifest(), KEY, 1, force=False)
    assert problems == [
        "1 DAG run(s) are queued or running and would be lost: let them finish, "
        "or restore with --force (make restore FORCE=yes)"
    ]
    assert restore_problems(manifest(), KEY, 3, force=True) == []


def test_both_problems_are_named_at_once() -> None:
    assert len(restore_problems(manifest(), OTHER_KEY, 2, force=False)) == 2


def test_counts_that_match_have_no_mismatch() -> None:
    assert count_mismatches({"a": 1, "b": 0}, {"a": 1, "b": 0}) == []


def test_each_differing_missing_or_extra_table_is_a_mismatch() -> None:
    mismatches = count_mismatches({"a": 2, "b": 0, "c": 1}, {"a": 1, "b": 0, "d": 0})
    assert mismatches == [
        "a: 1 in the database, 2 in the backup",
        "c: absent in the database, 1 in the backup",
        "d: 0 in the database, absent in the backup",
    ]


def test_the_summary_names_the_tables_users_ask_about() -> None:
    assert summary({"dag_run": 3, "ab_user": 2, "log": 99}) == (
        "3 DAG runs, 0 task instances, 0 connections, 0 variables, 2 users"
    )


def write_gzip(path: Path, data: bytes) -> Path:
    with gzip.open(path, "wb") as file:
        file.write(data)
    return path


def test_read_manifest_reads_a_complete_file(tmp_path: Path) -> None:
    path = write_gzip(tmp_path / "b.sql.gz", DUMP + manifest().trailer())
    assert read_manifest(path) == manifest()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.sql.gz", "does not exist"),
        (lambda d: d, "is a folder"),
        (lambda d: write_gzip(d / "cut.sql.gz", DUMP), "incomplete dump"),
        (lambda d: (d / "plain.sql").write_bytes(DUMP) and d / "plain.sql", "not a complete gzip"),
    ],
)
def test_read_manifest_refuses_what_is_not_a_complete_backup(
    tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ClusterError, match=message):
        read_manifest(path)


def test_a_truncated_gzip_is_refused(tmp_path: Path) -> None:
    whole = write_gzip(tmp_path / "b.sql.gz", DUMP + manifest().trailer()).read_bytes()
    cut = tmp_path / "cut.sql.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ClusterError, match="not a complete gzip"):
        read_manifest(cut)
