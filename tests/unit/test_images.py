"""images.py: the build-context digest and the extra CA certificates (no Docker)."""

import shutil
from pathlib import Path

import pytest

from airflow_ha.images import CA_DIR_NAME, ResolvedImages, context_digest, sync_extra_ca_certs

ARGS = {"BASE_IMAGE": "debian:trixie-slim"}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "context"
    (root / "sub").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM ${BASE_IMAGE}\n")
    (root / "sub" / "entrypoint").write_text('#!/bin/sh\nexec "$@"\n')
    return root


def test_digest_is_stable(context: Path) -> None:
    first = context_digest(context, ARGS)
    assert first == context_digest(context, dict(ARGS))
    assert len(first) == 64
    int(first, 16)


def test_digest_ignores_the_contexts_location(context: Path, tmp_path: Path) -> None:
    moved = shutil.copytree(context, tmp_path / "elsewhere")
    assert context_digest(moved, ARGS) == context_digest(context, ARGS)


def test_digest_ignores_build_arg_order(context: Path) -> None:
    assert context_digest(context, {"A": "1", "B": "2"}) == context_digest(
        context, {"B": "2", "A": "1"}
    )


def test_digest_ignores_empty_directories(context: Path) -> None:
    before = context_digest(context, ARGS)
    (context / "empty").mkdir()
    assert context_digest(context, ARGS) == before


def test_digest_changes_with_file_content(context: Path) -> None:
    before = context_digest(context, ARGS)
    (context / "sub" / "entrypoint").write_text('#!/bin/sh\nexec "$@" # changed\n')
    assert context_digest(context, ARGS) != before


def test_digest_changes_with_a_new_file(context: Path) -> None:
    before = context_digest(context, ARGS)
    (context / "sub" / "extra.crt").write_text("")
    assert context_digest(context, ARGS) != before


def test_digest_changes_with_a_removed_file(context: Path) -> None:
    before = context_digest(context, ARGS)
    (context / "sub" / "entrypoint").unlink()
    assert context_digest(context, ARGS) != before


def test_digest_changes_with_a_renamed_file(context: Path) -> None:
    before = context_digest(context, ARGS)
    (context / "sub" / "entrypoint").rename(context / "sub" / "start")
    assert context_digest(context, ARGS) != before


def test_digest_changes_with_a_build_arg(context: Path) -> None:
    before = context_digest(context, ARGS)
    assert context_digest(context, {"BASE_IMAGE": "airflow-ha/debian-standin:trixie"}) != before
    assert context_digest(context, {**ARGS, "EXTRA": "1"}) != before
    assert context_digest(context, {}) != before


def test_digest_tells_content_from_name(tmp_path: Path) -> None:
    # Moving bytes between a file's name and its content must not collide.
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "ab").write_text("c")
    (two / "a").write_text("bc")
    assert context_digest(one, {}) != context_digest(two, {})


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    source = tmp_path / "certs"
    (source / "nested").mkdir(parents=True)
    (source / "corp-root.crt").write_text("ROOT CERT")
    (source / "nested" / "proxy.crt").write_text("PROXY CERT")
    (source / "readme.txt").write_text("not a certificate")
    (source / "key.pem").write_text("not a .crt")
    return source


def test_sync_copies_only_crt_files_and_removes_stale_ones(certs: Path, context: Path) -> None:
    target = context / CA_DIR_NAME
    target.mkdir()
    (target / "stale.crt").write_text("OLD")
    (target / ".gitkeep").write_text("")

    assert sync_extra_ca_certs(certs, context) == 2

    assert sorted(p.name for p in target.iterdir()) == [
        ".gitkeep",
        "corp-root.crt",
        "nested_proxy.crt",
    ]
    assert (target / "corp-root.crt").read_text() == "ROOT CERT"
    assert (target / "nested_proxy.crt").read_text() == "PROXY CERT"


def test_sync_twice_gives_the_same_folder(certs: Path, context: Path) -> None:
    sync_extra_ca_certs(certs, context)
    first = context_digest(context, ARGS)
    assert sync_extra_ca_certs(certs, context) == 2
    assert context_digest(context, ARGS) == first


def test_sync_follows_a_removed_certificate(certs: Path, context: Path) -> None:
    sync_extra_ca_certs(certs, context)
    (certs / "nested" / "proxy.crt").unlink()
    assert sync_extra_ca_certs(certs, context) == 1
    assert sorted(p.name for p in (context / CA_DIR_NAME).iterdir()) == ["corp-root.crt"]


@pytest.mark.parametrize("source", [None, Path("/nonexistent/airflow-ha-unit-test")])
def test_sync_without_a_folder_clears_the_certificates(context: Path, source: Path | None) -> None:
    target = context / CA_DIR_NAME
    target.mkdir()
    (target / "stale.crt").write_text("OLD")
    (target / ".gitkeep").write_text("")

    assert sync_extra_ca_certs(source, context) == 0

    assert sorted(p.name for p in target.iterdir()) == [".gitkeep"]


def test_sync_creates_the_target_folder(context: Path) -> None:
    assert sync_extra_ca_certs(None, context) == 0
    assert (context / CA_DIR_NAME).is_dir()


def test_sync_with_a_file_as_source(tmp_path: Path, context: Path) -> None:
    not_a_dir = tmp_path / "single.crt"
    not_a_dir.write_text("CERT")
    assert sync_extra_ca_certs(not_a_dir, context) == 0
    assert list((context / CA_DIR_NAME).iterdir()) == []


def test_resolved_images_as_env() -> None:
    images = ResolvedImages(airflow="a:1", mysql="m:2", redis="r:3", haproxy="h:5", debian="d:4")
    assert images.as_env() == {
        "AIRFLOW_IMAGE": "a:1",
        "MYSQL_IMAGE": "m:2",
        "REDIS_IMAGE": "r:3",
        "HAPROXY_IMAGE": "h:5",
        "DEBIAN_IMAGE": "d:4",
    }


def test_sync_keeps_same_named_certificates_from_different_folders(
    tmp_path: Path, context: Path
) -> None:
    source = tmp_path / "same-names"
    for folder in ("a", "b"):
        (source / folder).mkdir(parents=True)
        (source / folder / "ca.crt").write_text(f"CERT {folder}")

    assert sync_extra_ca_certs(source, context) == 2
    copied = sorted((context / CA_DIR_NAME).glob("*.crt"))
    assert [p.read_text() for p in copied] == ["CERT a", "CERT b"]
