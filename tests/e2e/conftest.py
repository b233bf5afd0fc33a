"""E2E fixtures: Durata as real processes, the official ``temporalio`` client against them.

``deployment`` is parametrized over ``dev`` (start-dev on a SQLite file) and ``postgres`` (one process per role on
a fresh PostgreSQL database). PostgreSQL being down makes the postgres tests fail, never skip.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from e2e.deployments import ClusterDeployment, Deployment, DevDeployment

KINDS = ["dev", pytest.param("postgres", marks=pytest.mark.postgres)]


def pg_helpers():  # noqa: ANN202
    """The database helpers of tests/conftest.py: the module pytest already loaded from that file."""
    root = Path(__file__).resolve().parents[1] / "conftest.py"
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve() == root:
            return module.make_pg_database, module.drop_pg_database
    import conftest as root_conftest  # not loaded yet (unusual): plain import from tests/ on sys.path

    return root_conftest.make_pg_database, root_conftest.drop_pg_database


def make_deployment(kind: str, workdir: Path, extra_args: list[str] | None = None) -> Iterator[Deployment]:
    """Start a deployment and always tear it down (SIGTERM, then SIGKILL), dropping its database."""
    workdir.mkdir(parents=True, exist_ok=True)
    dep: Deployment
    drop = None
    if kind == "dev":
        dep = DevDeployment(kind, workdir, extra_args=list(extra_args or []))
    else:
        make_db, drop = pg_helpers()
        dep = ClusterDeployment(kind, workdir, extra_args=list(extra_args or []))
        dep.db_url = make_db("durata_e2e", migrate=False)
    try:
        dep.start()
        yield dep
    finally:
        dep.stop()
        if drop is not None:
            drop(dep.db_url)


@pytest.fixture(scope="session", params=KINDS)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One long-lived deployment per kind, shared by the tests that do not crash it."""
    yield from make_deployment(request.param, tmp_path_factory.mktemp(f"durata-{request.param}"))


@pytest.fixture(params=KINDS)
def fresh_deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """A deployment of its own, for tests that kill and restart processes."""
    yield from make_deployment(request.param, tmp_path / "durata")


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[Deployment]:
    """A PostgreSQL cluster of its own (one process per role)."""
    yield from make_deployment("postgres", tmp_path / "durata")


@pytest.fixture(scope="session")
def dev_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """start-dev only (CLI, logs): the features under test do not depend on the backend."""
    yield from make_deployment("dev", tmp_path_factory.mktemp("durata-dev-only"))


@pytest.fixture
async def client(deployment: Deployment) -> AsyncIterator[Client]:
    yield await Client.connect(deployment.address, namespace="default")


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"
