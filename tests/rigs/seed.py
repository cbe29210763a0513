#!/usr/bin/env python3
"""The rig's database rows, written with the installed manager's own table definitions.

    seed.py identities    domain, policies, resource group, project, the users and keypairs
    seed.py memberships   (26.x) the users' places in the RBAC graph
    seed.py sessions      the agent and the two sessions, pristine; and $RIG_ETC/agent.json

Users and keypairs go through the manager's code wherever it has some (26.x: the fixture
loader `populate_fixture`, which hashes passwords and gives each row its RBAC node). The
agent, session and kernel rows are inserted directly: a real agent would create them, and
the rig has none.

Sessions (fixed ids, so tests can name them):
  rig-running  RUNNING; its main kernel on 127.0.0.1 with the service ports below
  rig-pending  PENDING; no kernel host, no service ports
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import create_async_engine

E = os.environ
RELEASE = E["BAI_VERSION"]
MODERN = int(RELEASE.split(".")[0]) >= 24     # 26.x schema and RBAC

# Ids the tests name come from rig.env; these only the database sees.
DOMAIN, DOMAIN_ID = "default", uuid.UUID("b0a7c0de-0000-4000-8000-0000000000d0")
RESOURCE_GROUP, RESOURCE_GROUP_ID = "default", uuid.UUID("b0a7c0de-0000-4000-8000-0000000000c0")
AGENT_ID, AGENT_UUID = "i-rig-agent", uuid.UUID("b0a7c0de-0000-4000-8000-0000000000e0")
PROJECT, PROJECT_ID = E["PROJECT_NAME"], uuid.UUID(E["PROJECT_ID"])
RUNNING_ID, RUNNING_KERNEL = uuid.UUID(E["RUNNING_ID"]), uuid.UUID(E["RUNNING_KERNEL_ID"])
PENDING_ID, PENDING_KERNEL = uuid.UUID(E["PENDING_ID"]), uuid.UUID(E["PENDING_KERNEL_ID"])
# When the expired account last changed its password: longer ago than etcd's
# config/auth/max_password_age (conf/etcd-config.json.in).
EXPIRED_SINCE = datetime(2020, 1, 1, tzinfo=timezone.utc)

# (email, user id, access key, secret key, password, whether its password has expired)
USERS = [
    (E["RIG_USER_EMAIL"], uuid.UUID(E["USER_ID"]), E["ACCESS_KEY"], E["SECRET_KEY"],
     E["RIG_USER_PASSWORD"], False),
    (E["EXPIRED_USER_EMAIL"], uuid.UUID(E["EXPIRED_USER_ID"]), E["EXPIRED_ACCESS_KEY"],
     E["EXPIRED_SECRET_KEY"], E["EXPIRED_USER_PASSWORD"], True),
]
MAIN_USER_ID = USERS[0][1]


def service_ports() -> list[dict]:
    """rig-running's service ports (service-ports.json, host ports named by rig.env keys)."""
    ports = json.loads(Path(E["RIG_ETC"], "service-ports.json").read_text())
    for port in ports:
        port["host_ports"] = [int(E[var]) for var in port["host_ports"]]
        port["is_inference"] = False
    return ports


KERNEL_SLOTS = {"cpu": Decimal(1), "mem": Decimal(1 << 30)}
AGENT_SLOTS = {"cpu": Decimal(4), "mem": Decimal(8 << 30)}


def dsn() -> str:
    return (f"postgresql+asyncpg://{E['DB_USER']}:{E['DB_PASS']}@{E['HOST']}:{E['PG_PORT']}"
            f"/{E['DB_NAME']}")


def ssh_keypair() -> tuple[str, str]:
    etc = Path(E["RIG_ETC"])
    return (etc / "id_container.pub").read_text(), (etc / "id_container").read_text()


def status_history(*states: str, at: datetime) -> dict[str, str]:
    return {s: at.isoformat() for s in states}


async def upsert(conn, table: sa.Table, rows: list[dict]) -> None:
    """Inserts the rows, or overwrites the columns given where the primary key exists.

    A row that does not name its primary key (an association row whose key is a generated
    id, unique by its other columns, such as sgroups_for_domains) is inserted only if no
    row conflicts with it: setup runs again on a database it already seeded."""
    keys = [c.name for c in table.primary_key]
    for row in rows:
        stmt = pg_insert(table).values(**row)
        if not all(k in row for k in keys):
            await conn.execute(stmt.on_conflict_do_nothing())
            continue
        changes = {k: stmt.excluded[k] for k in row if k not in keys}
        await conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changes)
                           if changes else stmt.on_conflict_do_nothing(index_elements=keys))


async def set_password_ages() -> None:
    """Every password changed now, but the expired account's, long ago."""
    engine = create_async_engine(dsn())
    async with engine.begin() as conn:
        for email, _, _, _, _, expired in USERS:
            await conn.execute(sa.text(
                "UPDATE users SET password_changed_at = :at WHERE email = :email"),
                {"at": EXPIRED_SINCE if expired else datetime.now(timezone.utc), "email": email})
    await engine.dispose()


def write_agent_json() -> None:
    """The agent's view of its one kernel (agent.py)."""
    Path(E["RIG_ETC"], "agent.json").write_text(json.dumps({"kernels": {
        str(RUNNING_KERNEL): {"session": "rig-running", "host": E["HOST"],
                              "home": E["WORK_HOME"], "service_ports": service_ports()},
    }}, indent=2))


# ---- Backend.AI 23.09 -------------------------------------------------------------------
class Release2309:
    """The 23.09 schema: slots on the session and kernel rows, memberships in plain tables."""

    def __init__(self) -> None:
        from ai.backend.manager import models
        self.m = models

    async def identities(self) -> None:
        from ai.backend.common.types import ResourceSlot
        from ai.backend.manager.models.resource_policy import DefaultForUnspecified
        from ai.backend.manager.models.scaling_group import ScalingGroupOpts
        m = self.m
        pub, priv = ssh_keypair()
        engine = create_async_engine(dsn())
        async with engine.begin() as conn:
            await upsert(conn, m.domains, [dict(
                name=DOMAIN, description="rig domain", is_active=True,
                total_resource_slots=ResourceSlot(), allowed_vfolder_hosts={},
                allowed_docker_registries=["cr.backend.ai"])])
            await upsert(conn, m.keypair_resource_policies, [dict(
                name="default", default_for_unspecified=DefaultForUnspecified.UNLIMITED,
                total_resource_slots=ResourceSlot(), max_session_lifetime=0,
                max_concurrent_sessions=30, max_concurrent_sftp_sessions=1,
                max_containers_per_session=1, max_vfolder_count=10, max_vfolder_size=0,
                idle_timeout=0, allowed_vfolder_hosts={})])
            await upsert(conn, m.user_resource_policies, [dict(
                name="default", max_vfolder_size=0, max_session_count_per_model_session=10)])
            await upsert(conn, m.project_resource_policies, [dict(name="default", max_vfolder_size=0)])
            await upsert(conn, m.scaling_groups, [dict(
                name=RESOURCE_GROUP, description="rig resource group", is_active=True,
                is_public=True, driver="static", driver_opts={}, scheduler="fifo",
                scheduler_opts=ScalingGroupOpts(), use_host_network=False,
                wsproxy_addr=None, wsproxy_api_token=None)])
            await upsert(conn, m.groups, [dict(
                id=PROJECT_ID, name=PROJECT, description="rig project", is_active=True,
                domain_name=DOMAIN, total_resource_slots=ResourceSlot(),
                allowed_vfolder_hosts={}, resource_policy="default")])
            await upsert(conn, m.sgroups_for_domains, [dict(scaling_group=RESOURCE_GROUP, domain=DOMAIN)])
            await upsert(conn, m.sgroups_for_groups, [dict(scaling_group=RESOURCE_GROUP, group=PROJECT_ID)])
            for email, user_id, access_key, secret_key, password, _ in USERS:
                # users.main_access_key points at keypairs, which point at users: the user
                # first, then its keypair, then the link.
                await upsert(conn, m.users, [dict(
                    uuid=user_id, username=email.split("@")[0], email=email, password=password,
                    need_password_change=False, full_name=email,
                    description="rig user", status=m.UserStatus.ACTIVE,
                    status_info="admin-requested", domain_name=DOMAIN, role=m.UserRole.USER,
                    resource_policy="default", sudo_session_enabled=False,
                    totp_activated=False)])
                await upsert(conn, m.keypairs, [dict(
                    user_id=email, access_key=access_key, secret_key=secret_key, is_active=True,
                    is_admin=False, rate_limit=30000, num_queries=0, ssh_public_key=pub,
                    ssh_private_key=priv, user=user_id, resource_policy="default",
                    dotfiles=b"\x90", bootstrap_script="")])
                await conn.execute(sa.update(m.users).values(main_access_key=access_key)
                                   .where(m.users.c.uuid == user_id))
                await upsert(conn, m.association_groups_users, [dict(user_id=user_id, group_id=PROJECT_ID)])
                await upsert(conn, m.sgroups_for_keypairs,
                             [dict(scaling_group=RESOURCE_GROUP, access_key=access_key)])
        await engine.dispose()
        await set_password_ages()

    async def memberships(self) -> None:
        pass  # 23.09 has no RBAC graph: association_groups_users (identities) is all

    async def sessions(self) -> None:
        from ai.backend.common.types import ResourceSlot, SessionTypes
        m = self.m
        slots, none = ResourceSlot(KERNEL_SLOTS), ResourceSlot()
        now = datetime.now(timezone.utc)
        running = status_history("PENDING", "SCHEDULED", "PREPARING", "RUNNING", at=now)
        pending = status_history("PENDING", at=now)
        agent_addr = f"tcp://{E['HOST']}:{E['AGENT_RPC_PORT']}"
        access_key = USERS[0][2]
        sessions = m.SessionRow.__table__
        engine = create_async_engine(dsn())
        async with engine.begin() as conn:
            await upsert(conn, m.agents, [dict(
                id=AGENT_ID, status=m.AgentStatus.ALIVE, status_changed=now, region="local",
                scaling_group=RESOURCE_GROUP, available_slots=ResourceSlot(AGENT_SLOTS),
                occupied_slots=slots, addr=agent_addr, public_host=E["HOST"], public_key=None,
                lost_at=None, version=RELEASE, architecture="x86_64", compute_plugins={},
                auto_terminate_abusing_kernel=False,
                # New sessions stay PENDING: the agent cannot create containers.
                schedulable=False)])
            for sid in (RUNNING_ID, PENDING_ID):
                await conn.execute(sa.delete(m.kernels).where(m.kernels.c.session_id == sid))
                await conn.execute(sa.delete(sessions).where(sessions.c.id == sid))
            common = dict(session_type=SessionTypes.INTERACTIVE, cluster_mode="single-node",
                          cluster_size=1, domain_name=DOMAIN, group_id=PROJECT_ID,
                          user_uuid=MAIN_USER_ID, access_key=access_key, tag=None,
                          vfolder_mounts=[], environ={}, use_host_network=False,
                          scaling_group_name=RESOURCE_GROUP, target_sgroup_names=[RESOURCE_GROUP],
                          images=[E["IMAGE"]], requested_slots=slots, status_info=None,
                          created_at=now)
            await conn.execute(sa.insert(sessions).values(
                id=RUNNING_ID, creation_id="rigrunning", name="rig-running",
                agent_ids=[AGENT_ID], occupying_slots=slots, status=m.SessionStatus.RUNNING,
                status_history=running, **common))
            await conn.execute(sa.insert(sessions).values(
                id=PENDING_ID, creation_id="rigpending", name="rig-pending", agent_ids=[],
                occupying_slots=none, status=m.SessionStatus.PENDING, status_history=pending,
                **common))
            kcommon = dict(session_type=SessionTypes.INTERACTIVE, cluster_mode="single-node",
                           cluster_size=1, cluster_role="main", cluster_idx=1, local_rank=0,
                           cluster_hostname="main1", scaling_group=RESOURCE_GROUP,
                           domain_name=DOMAIN, group_id=PROJECT_ID, user_uuid=MAIN_USER_ID,
                           access_key=access_key, image=E["IMAGE"], architecture="x86_64",
                           registry="cr.backend.ai", tag=None, requested_slots=slots,
                           occupied_shares={}, environ=[], mounts=[], mount_map={},
                           vfolder_mounts=[], attached_devices={}, resource_opts={},
                           repl_in_port=2000, repl_out_port=2001, stdin_port=2002,
                           stdout_port=2003, use_host_network=False, preopen_ports=[],
                           created_at=now, status_changed=now)
            await conn.execute(sa.insert(m.kernels).values(
                id=RUNNING_KERNEL, session_id=RUNNING_ID, session_creation_id="rigrunning",
                session_name="rig-running", agent=AGENT_ID, agent_addr=agent_addr,
                container_id="rig" + "0" * 61, occupied_slots=slots, kernel_host=E["HOST"],
                service_ports=service_ports(), status=m.KernelStatus.RUNNING,
                status_history=running, **kcommon))
            await conn.execute(sa.insert(m.kernels).values(
                id=PENDING_KERNEL, session_id=PENDING_ID, session_creation_id="rigpending",
                session_name="rig-pending", agent=None, agent_addr=None, container_id=None,
                occupied_slots=none, kernel_host=None, service_ports=None,
                status=m.KernelStatus.PENDING, status_history=pending, **kcommon))
        await engine.dispose()


# ---- Backend.AI 26.x --------------------------------------------------------------------
class Release26:
    """The 26.x schema: slots in resource_allocations / agent_resources, and access granted
    through the RBAC graph (each row a node; users and sessions placed in their scopes)."""

    def __init__(self) -> None:
        from ai.backend.manager.models.base import ensure_all_tables_registered, metadata
        ensure_all_tables_registered()
        self.t = metadata.tables

    @staticmethod
    def fixture() -> dict:
        pub, priv = ssh_keypair()
        return {
            # The two slot types every session here uses (the repository's example fixture
            # has more; resource rows refer to these by name).
            "resource_slot_types": [
                {"uuid": "b0a7c0de-0000-4000-8000-00000000f001", "slot_name": "cpu",
                 "slot_type": "count", "required": True, "display_name": "CPU",
                 "description": "CPU", "display_unit": "Core", "display_icon": "cpu",
                 "number_format": {"binary": False, "round_length": 0}, "rank": 100},
                {"uuid": "b0a7c0de-0000-4000-8000-00000000f002", "slot_name": "mem",
                 "slot_type": "bytes", "required": True, "display_name": "RAM",
                 "description": "Memory", "display_unit": "GiB", "display_icon": "ram",
                 "number_format": {"binary": True, "round_length": 0}, "rank": 200},
            ],
            "domains": [{"id": str(DOMAIN_ID), "name": DOMAIN, "description": "rig domain",
                         "is_active": True, "total_resource_slots": {},
                         "allowed_vfolder_hosts": {}, "allowed_docker_registries": ["cr.backend.ai"]}],
            "user_resource_policies": [{"name": "default", "max_vfolder_count": 0,
                                        "max_quota_scope_size": -1,
                                        "max_session_count_per_model_session": 10}],
            "project_resource_policies": [{"name": "default", "max_vfolder_count": 0,
                                           "max_quota_scope_size": -1, "max_network_count": 3}],
            "keypair_resource_policies": [{
                "name": "default", "is_default": True, "default_for_unspecified": "UNLIMITED",
                "total_resource_slots": {}, "max_session_lifetime": 0,
                "max_concurrent_sessions": 30, "max_containers_per_session": 1,
                "idle_timeout": 0, "allowed_vfolder_hosts": {}}],
            "groups": [{"id": str(PROJECT_ID), "name": PROJECT, "description": "rig project",
                        "is_active": True, "domain_name": DOMAIN, "resource_policy": "default",
                        "total_resource_slots": {}, "allowed_vfolder_hosts": {},
                        "type": "general"}],
            "scaling_groups": [{
                "id": str(RESOURCE_GROUP_ID), "name": RESOURCE_GROUP,
                "description": "rig resource group", "is_active": True, "is_public": True,
                "is_default": True, "driver": "static", "driver_opts": {}, "scheduler": "fifo",
                "scheduler_opts": {}, "use_host_network": False, "wsproxy_addr": None,
                "wsproxy_api_token": None}],
            "sgroups_for_domains": [{"resource_group_id": str(RESOURCE_GROUP_ID),
                                     "domain_id": str(DOMAIN_ID)}],
            "sgroups_for_groups": [{"resource_group_id": str(RESOURCE_GROUP_ID),
                                    "group": str(PROJECT_ID)}],
            "users": [{
                "uuid": str(user_id), "username": email.split("@")[0], "email": email,
                "password": password, "need_password_change": False,
                "full_name": email, "description": "rig user", "status": "active",
                "status_info": "admin-requested", "domain_name": DOMAIN,
                "domain_id": str(DOMAIN_ID), "resource_policy": "default", "role": "user",
                "sudo_session_enabled": False, "totp_activated": False,
            } for email, user_id, _, _, password, _ in USERS],
            "keypairs": [{
                "access_key": access_key, "secret_key": secret_key, "is_active": True,
                "is_admin": False, "is_default": True, "resource_policy": "default",
                "rate_limit": 30000, "num_queries": 0, "user": str(user_id),
                "ssh_public_key": pub, "ssh_private_key": priv,
            } for _, user_id, access_key, secret_key, _, _ in USERS],
            "sgroups_for_keypairs": [{"resource_group_id": str(RESOURCE_GROUP_ID),
                                      "access_key": access_key}
                                     for _, _, access_key, _, _, _ in USERS],
            "association_groups_users": [{"group_id": str(PROJECT_ID), "user_id": str(user_id)}
                                         for _, user_id, _, _, _, _ in USERS],
        }

    async def identities(self) -> None:
        from ai.backend.manager.cli.role_fixture import RoleFixture
        from ai.backend.manager.data.permission.seed.loader import RoleSeedLoader
        from ai.backend.manager.models.base import populate_fixture
        engine = create_async_engine(dsn())
        try:
            # The role presets, as `mgr permissions emit` renders them from the manager's
            # own role declarations.
            presets = RoleFixture(RoleSeedLoader().load()).render_presets()
            await populate_fixture(engine, {k: v for k, v in presets.items() if not k.startswith("__")})
            await populate_fixture(engine, self.fixture())
            # populate_fixture skips rows that exist: re-apply what the rig's settings decide,
            # so that a changed password or key takes effect. (A fresh fixture: the loader
            # turns the passwords of the one it is given into hash objects.)
            fixture = self.fixture()
            await populate_fixture(engine, {"__mode": "update", "users": [
                {k: u[k] for k in ("uuid", "email", "password", "status", "role")}
                for u in fixture["users"]]})
            await populate_fixture(engine, {"__mode": "update", "keypairs": [
                {k: kp[k] for k in ("access_key", "secret_key", "is_active", "ssh_public_key",
                                    "ssh_private_key")}
                for kp in fixture["keypairs"]]})
        finally:
            await engine.dispose()
        await set_password_ages()

    async def memberships(self) -> None:
        """What creating the users through the manager does besides their rows: the domain
        owns each user, who joins the project (granting its roles)."""
        from sqlalchemy.ext.asyncio import AsyncSession
        from ai.backend.common.data.entity.domain import DomainID
        from ai.backend.common.data.entity.project import ProjectID
        from ai.backend.common.data.entity.user import UserID
        from ai.backend.manager.repositories.ops.v2.user.write import V2UserWriteOps
        engine = create_async_engine(dsn())
        try:
            async with AsyncSession(engine) as db, db.begin():
                ops = V2UserWriteOps(db)
                for _, user_id, _, _, _, _ in USERS:
                    await ops._created_in([DomainID(DOMAIN_ID)], UserID(user_id))
                    await ops.join_projects(UserID(user_id), DomainID(DOMAIN_ID), [ProjectID(PROJECT_ID)])
                    await ops.restate_user_resource_policy_share(UserID(user_id))
                    await ops.restate_keypair_resource_policy_share(UserID(user_id))
        finally:
            await engine.dispose()

    async def sessions(self) -> None:
        from sqlalchemy.ext.asyncio import AsyncSession
        from ai.backend.common.data.entity.project import ProjectID
        from ai.backend.common.data.entity.session import SessionID
        from ai.backend.common.data.entity.user import UserID
        from ai.backend.common.types import ClusterMode, SessionTypes
        from ai.backend.manager.data.kernel.types import KernelStatus
        from ai.backend.manager.data.session.types import SessionStatus
        from ai.backend.manager.models.agent.row import AgentStatus
        from ai.backend.manager.repositories.ops.v2.graph_write import V2GraphWriteOpsBase
        t = self.t
        sessions, kernels, agents = t["sessions"], t["kernels"], t["agents"]
        allocations, agent_resources = t["resource_allocations"], t["agent_resources"]
        now = datetime.now(timezone.utc)
        running = status_history("PENDING", "SCHEDULED", "PREPARING", "RUNNING", at=now)
        pending = status_history("PENDING", at=now)
        agent_addr = f"tcp://{E['HOST']}:{E['AGENT_RPC_PORT']}"
        access_key = USERS[0][2]
        engine = create_async_engine(dsn())
        try:
            async with AsyncSession(engine) as db, db.begin():
                agent = dict(uuid=AGENT_UUID, id=AGENT_ID, status=AgentStatus.ALIVE,
                             status_changed=now, region="local", scaling_group=RESOURCE_GROUP,
                             resource_group_id=RESOURCE_GROUP_ID, addr=agent_addr,
                             public_host=E["HOST"], public_key=None, lost_at=None,
                             version=RELEASE, architecture="x86_64", compute_plugins={},
                             auto_terminate_abusing_kernel=False,
                             # New sessions stay PENDING: the agent cannot create containers.
                             schedulable=False)
                stmt = pg_insert(agents).values(**agent)
                await db.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={
                    k: stmt.excluded[k] for k in agent if k not in ("id", "uuid")}))
                await db.execute(sa.delete(agent_resources).where(agent_resources.c.agent_id == AGENT_ID))
                for slot, capacity in AGENT_SLOTS.items():
                    await db.execute(sa.insert(agent_resources).values(
                        agent_id=AGENT_ID, agent_uuid=AGENT_UUID, slot_name=slot,
                        capacity=capacity, used=KERNEL_SLOTS[slot]))

                graph = V2GraphWriteOpsBase(db)
                ids = [SessionID(RUNNING_ID), SessionID(PENDING_ID)]
                await graph._teardown(ids)     # the manager's own cleanup of their nodes
                for kernel in (RUNNING_KERNEL, PENDING_KERNEL):
                    await db.execute(sa.delete(allocations).where(allocations.c.kernel_id == kernel))
                for sid in (RUNNING_ID, PENDING_ID):
                    await db.execute(sa.delete(kernels).where(kernels.c.session_id == sid))
                    await db.execute(sa.delete(sessions).where(sessions.c.id == sid))
                common = dict(session_type=SessionTypes.INTERACTIVE,
                              cluster_mode=ClusterMode.SINGLE_NODE, cluster_size=1,
                              domain_name=DOMAIN, domain_id=DOMAIN_ID, group_id=PROJECT_ID,
                              user_uuid=MAIN_USER_ID, access_key=access_key, tag=None,
                              vfolder_mounts=[], environ={}, use_host_network=False,
                              resource_group_id=RESOURCE_GROUP_ID,
                              scaling_group_name=RESOURCE_GROUP,
                              target_sgroup_names=[RESOURCE_GROUP], images=[E["IMAGE"]],
                              status_info=None, created_at=now)
                await db.execute(sa.insert(sessions).values(
                    id=RUNNING_ID, creation_id="rigrunning", name="rig-running",
                    agent_ids=[AGENT_ID], status=SessionStatus.RUNNING,
                    status_history=running, **common))
                await db.execute(sa.insert(sessions).values(
                    id=PENDING_ID, creation_id="rigpending", name="rig-pending", agent_ids=[],
                    status=SessionStatus.PENDING, status_history=pending, **common))
                kcommon = dict(session_type=SessionTypes.INTERACTIVE,
                               cluster_mode=ClusterMode.SINGLE_NODE, cluster_size=1,
                               cluster_role="main", cluster_idx=1, local_rank=0,
                               cluster_hostname="main1", scaling_group=RESOURCE_GROUP,
                               resource_group_id=RESOURCE_GROUP_ID, domain_name=DOMAIN,
                               group_id=PROJECT_ID, user_uuid=MAIN_USER_ID,
                               access_key=access_key, image=E["IMAGE"], architecture="x86_64",
                               registry="cr.backend.ai", tag=None, occupied_shares={},
                               environ=[], mounts=[], mount_map={}, vfolder_mounts=[],
                               attached_devices={}, resource_opts={}, repl_in_port=2000,
                               repl_out_port=2001, stdin_port=2002, stdout_port=2003,
                               use_host_network=False, preopen_ports=[], created_at=now,
                               status_changed=now)
                await db.execute(sa.insert(kernels).values(
                    id=RUNNING_KERNEL, session_id=RUNNING_ID, session_creation_id="rigrunning",
                    session_name="rig-running", agent=AGENT_ID, agent_addr=agent_addr,
                    container_id="rig" + "0" * 61, kernel_host=E["HOST"],
                    service_ports=service_ports(), status=KernelStatus.RUNNING,
                    status_history=running, **kcommon))
                await db.execute(sa.insert(kernels).values(
                    id=PENDING_KERNEL, session_id=PENDING_ID, session_creation_id="rigpending",
                    session_name="rig-pending", agent=None, agent_addr=None, container_id=None,
                    kernel_host=None, service_ports=None, status=KernelStatus.PENDING,
                    status_history=pending, **kcommon))
                for kernel, allocated in ((RUNNING_KERNEL, True), (PENDING_KERNEL, False)):
                    for slot, amount in KERNEL_SLOTS.items():
                        await db.execute(sa.insert(allocations).values(
                            kernel_id=kernel, slot_name=slot, requested=amount,
                            **({"reserved": amount} if allocated else {})))
                # The graph nodes the enqueue path writes for a new session.
                for sid in ids:
                    await graph._provision([sid])
                    await graph._created_in([UserID(MAIN_USER_ID), ProjectID(PROJECT_ID)], sid)
        finally:
            await engine.dispose()


async def main(step: str) -> None:
    release = Release26() if MODERN else Release2309()
    await getattr(release, step)()
    if step == "sessions":
        write_agent_json()
    print(f"seed: {step} done (Backend.AI {RELEASE})", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("identities", "memberships", "sessions"):
        sys.exit("usage: seed.py identities|memberships|sessions")
    asyncio.run(main(sys.argv[1]))
