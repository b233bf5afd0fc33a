"""The Persistence bundle over one Database (either backend)."""

from __future__ import annotations

from server.persistence.interface import (
    ClusterMetadataStore,
    ExecutionStore,
    MembershipStore,
    NamespaceStore,
    ShardStore,
    TaskStore,
    VisibilityStore,
)
from server.persistence.sql.executions import SqlExecutionStore
from server.persistence.sql.membership import SqlMembershipStore
from server.persistence.sql.stores import (
    SqlClusterMetadataStore,
    SqlNamespaceStore,
    SqlShardStore,
    SqlTaskStore,
)
from server.persistence.sql.tx import Database
from server.persistence.sql.visibility import SqlVisibilityStore


class SqlPersistence:
    """Implements interface.Persistence; ``db`` is exposed for tests and maintenance tools."""

    def __init__(
        self, db: Database, *, executions: ExecutionStore | None = None, tasks: TaskStore | None = None
    ) -> None:
        """``executions``: a backend's own store with faster paths for the hot writes (PostgreSQL)."""
        self.db = db
        # Annotated with the protocols so mypy checks each store against interface.py.
        self.namespaces: NamespaceStore = SqlNamespaceStore(db)
        self.cluster: ClusterMetadataStore = SqlClusterMetadataStore(db)
        self.membership: MembershipStore = SqlMembershipStore(db)
        self.shards: ShardStore = SqlShardStore(db)
        self.executions: ExecutionStore = executions or SqlExecutionStore(db)
        self.tasks: TaskStore = tasks or SqlTaskStore(db)
        self.visibility: VisibilityStore = SqlVisibilityStore(db)

    async def close(self) -> None:
        await self.db.close()
