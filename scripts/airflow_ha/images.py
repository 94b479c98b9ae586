"""Make every image the cluster runs available, with or without a registry.

The Airflow image is always built here. MySQL, Redis, HAProxy and the Debian
base are taken as found locally, else pulled; where neither works (no registry, like a
sandboxed CI machine) a stand-in is built from Debian's packages: the Debian
base by debootstrap + `docker import`, MySQL, Redis and HAProxy from
images/<name> on top of it. The resolved names are handed to Compose, so one
Compose file serves both cases.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.errors import ClusterError, DockerUnavailableError
from airflow_ha.paths import IMAGES_DIR
from airflow_ha.settings import Settings

CONTEXT_LABEL = "io.airflow-ha.context-sha256"
DEBIAN_SUITE = "trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
STANDIN_DEBIAN = "airflow-ha/debian-standin:trixie"
STANDIN_MYSQL = "airflow-ha/mysql-standin:sid"
STANDIN_REDIS = "airflow-ha/redis-standin:trixie"
STANDIN_HAPROXY = "airflow-ha/haproxy-standin:sid"
CA_DIR_NAME = "ca-certificates"

Log = Callable[[str], None]


@dataclass(frozen=True)
class ResolvedImages:
    airflow: str
    mysql: str
    redis: str
    haproxy: str
    debian: str

    def as_env(self) -> dict[str, str]:
        return {
            "AIRFLOW_IMAGE": self.airflow,
            "MYSQL_IMAGE": self.mysql,
            "REDIS_IMAGE": self.redis,
            "HAPROXY_IMAGE": self.haproxy,
            "DEBIAN_IMAGE": self.debian,
        }


def context_digest(context: Path, build_args: dict[str, str]) -> str:
    """A digest of every file in a build context and of the build arguments."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for key in sorted(build_args):
        digest.update(f"{key}={build_args[key]}\0".encode())
    return digest.hexdigest()


def sync_extra_ca_certs(source: Path | None, context: Path) -> int:
    """Copy the *.crt files of `source` into the context's ca-certificates folder."""
    target = context / CA_DIR_NAME
    target.mkdir(exist_ok=True)
    for old in target.glob("*.crt"):
        old.unlink()
    if source is None or not source.is_dir():
        return 0
    certs = sorted(source.rglob("*.crt"))
    for cert in certs:
        # Flattened relative path: two a.crt in different subfolders both survive.
        flat_name = "_".join(cert.relative_to(source).parts)
        shutil.copyfile(cert, target / flat_name)
    return len(certs)


class ImageBuilder:
    def __init__(self, docker: DockerClient, settings: Settings, log: Log) -> None:
        self._docker = docker
        self._settings = settings
        self._log = log

    def ensure_all(self) -> ResolvedImages:
        debian = self._debian()
        base = {"BASE_IMAGE": debian}

        def standin(name: str, wanted: str, tag: str) -> str:
            return self._external(wanted, tag, lambda: self._build(IMAGES_DIR / name, tag, base))

        mysql = standin("mysql", self._settings.mysql_image, STANDIN_MYSQL)
        redis = standin("redis", self._settings.redis_image, STANDIN_REDIS)
        haproxy = standin("haproxy", self._settings.haproxy_image, STANDIN_HAPROXY)
        self._build_airflow(debian)
        return ResolvedImages(
            airflow=self._settings.airflow_image,
            mysql=mysql,
            redis=redis,
            haproxy=haproxy,
            debian=debian,
        )

    def ensure_airflow(self) -> str:
        """Only the Airflow image (and the Debian base it needs): what `check-dags` runs."""
        self._build_airflow(self._debian())
        return self._settings.airflow_image

    def ensure_ssh_target(self, tag: str) -> str:
        """Lab 10's SSH target (images/ssh-target), on the same Debian base."""
        self._build(IMAGES_DIR / "ssh-target", tag, {"BASE_IMAGE": self._debian()})
        return tag

    def ensure_swarm_node(self, tag: str) -> str:
        """A Docker engine in a container (images/swarm-node), for the three-engine Swarm."""
        self._build(IMAGES_DIR / "swarm-node", tag, {"BASE_IMAGE": self._debian()})
        return tag

    def _debian(self) -> str:
        return self._external(self._settings.debian_image, STANDIN_DEBIAN, self._debootstrap)

    def _build_airflow(self, debian: str) -> None:
        airflow_context = IMAGES_DIR / "airflow"
        certs = sync_extra_ca_certs(self._settings.extra_ca_certs_dir, airflow_context)
        if certs:
            self._log(f"trusting {certs} extra CA certificate(s) in the Airflow image build")
        self._build(airflow_context, self._settings.airflow_image, {"BASE_IMAGE": debian})

    def _external(self, wanted: str, standin: str, make_standin: Callable[[], None]) -> str:
        """`wanted` if present or pullable, else the stand-in (made or refreshed)."""
        if self._docker.image.exists(wanted):
            self._log(f"{wanted}: present")
            return wanted
        if not self._docker.image.exists(standin):
            self._log(f"{wanted}: pulling")
            try:
                self._docker.image.pull(wanted, quiet=True)
                return wanted
            except DockerException:
                self._log(
                    f"{wanted}: cannot be pulled; using a stand-in built from Debian packages"
                )
        make_standin()
        self._log(f"{wanted}: using stand-in {standin}")
        return standin

    def _build(self, context: Path, tag: str, build_args: dict[str, str]) -> None:
        digest = context_digest(context, build_args)
        if self._docker.image.exists(tag):
            labels = self._docker.image.inspect(tag).config.labels or {}
            if labels.get(CONTEXT_LABEL) == digest:
                self._log(f"{tag}: up to date")
                return
        self._log(f"{tag}: building from {context.relative_to(IMAGES_DIR.parent)}")
        try:
            lines = self._docker.buildx.build(
                context,
                tags=[tag],
                build_args=build_args,
                labels={CONTEXT_LABEL: digest},
                load=True,
                progress="plain",
                stream_logs=True,
            )
            assert isinstance(lines, Iterator)  # stream_logs=True
            for line in lines:
                print(f"  {tag} | {line.rstrip()}", flush=True)
        except DockerException as error:
            raise ClusterError(
                f"building {tag} failed (exit {error.return_code}); see the build log above"
            ) from None
        self._log(f"{tag}: built")

    def _debootstrap(self) -> None:
        """Build a minimal Debian image from Debian's packages alone (once)."""
        if self._docker.image.exists(STANDIN_DEBIAN):
            return
        if shutil.which("debootstrap") is None:
            raise DockerUnavailableError(
                "no Debian base image can be found or pulled, and debootstrap is not installed: "
                "run `sudo scripts/install-host-tools.sh`"
            )
        if os.geteuid() != 0:
            raise DockerUnavailableError(
                "no Debian base image can be found or pulled; building one with debootstrap "
                "needs root: run `sudo make images` once"
            )
        self._log(f"debootstrap {DEBIAN_SUITE} (minbase) from {DEBIAN_MIRROR}")
        with tempfile.TemporaryDirectory(prefix="airflow-ha-rootfs-") as tmp:
            root = Path(tmp) / "rootfs"
            tarball = Path(tmp) / "rootfs.tar"
            self._run(["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(root), DEBIAN_MIRROR])
            for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in (root / leftovers).glob("*"):
                    if item.is_file():
                        item.unlink()
            self._run(["tar", "-C", str(root), "-cf", str(tarball), "."])
            self._docker.image.import_(
                tarball, tag=STANDIN_DEBIAN, changes=["ENV LANG=C.UTF-8", 'CMD ["bash"]']
            )
        self._log(f"{STANDIN_DEBIAN}: imported")

    def _run(self, command: list[str]) -> None:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            print(f"  {command[0]} | {line.rstrip()}", flush=True)
        if process.wait() != 0:
            raise ClusterError(f"{command[0]} failed with exit code {process.returncode}")
