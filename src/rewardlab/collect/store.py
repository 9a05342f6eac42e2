"""The annotation database: users, projects, items, assignments and labels, on SQLite or PostgreSQL.

One SQLAlchemy Core schema serves both. SQLite runs in WAL mode with ``synchronous=FULL`` and takes its
write lock at the start of a transaction (``BEGIN IMMEDIATE``), so concurrent writers queue instead of
failing half-way. Every label is committed before the server answers, and a label is unique per
assignment, so a retried submission is recognised instead of stored twice.

Schema changes are numbered migrations: ``open_store`` brings an older database up to ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from rewardlab.collect import tasks
from rewardlab.collect.tasks import check_item, check_label
from rewardlab.errors import RewardlabError

T = TypeVar("T")

# PostgreSQL aborts one transaction of a deadlock (40P01) or a serialization conflict (40001); the transaction
# rolled back whole, so running it again is safe and is what the server asks clients to do.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
MAX_ATTEMPTS = 5

SCHEMA_VERSION = 2
ROLES = ("admin", "annotator")

metadata = sa.MetaData()
schema_info = sa.Table("schema_info", metadata, sa.Column("version", sa.Integer, nullable=False))
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)
projects = sa.Table(
    "projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("task_type", sa.String(20), nullable=False),
    sa.Column("instructions", sa.Text, nullable=False),
    sa.Column("overlap", sa.Integer, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON: e.g. {"scale": [1, 5]}
    sa.Column("created_at", sa.Float, nullable=False),
)
members = sa.Table(
    "members", metadata,
    sa.Column("project_id", sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), primary_key=True),
)
items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON: {prompt, responses[, steps]}
    sa.Column("assigned", sa.Integer, nullable=False, default=0),  # assignments handed out (≤ overlap)
    sa.UniqueConstraint("project_id", "external_id"),
)
assignments = sa.Table(
    "assignments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.ForeignKey("items.id"), nullable=False),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("shown_order", sa.Text, nullable=False),  # JSON permutation: screen position -> response index
    sa.Column("assigned_at", sa.Float, nullable=False),
    sa.Column("done", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("item_id", "user_id"),  # never the same item twice to one person
    sa.Index("ix_assignments_user_project", "user_id", "project_id", "done"),
)
labels = sa.Table(
    "labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("assignment_id", sa.ForeignKey("assignments.id"), nullable=False, unique=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("item_id", sa.ForeignKey("items.id"), nullable=False),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("value", sa.Text, nullable=False),  # JSON, canonical (see tasks.check_label)
    sa.Column("seconds", sa.Float, nullable=True),  # time spent on the item, as the browser measured it
    sa.Column("created_at", sa.Float, nullable=False),
)


def _add_assigned_counter(conn: Connection) -> None:
    """v1 → v2: items count their assignments, so handing out the k-th copy is one atomic UPDATE."""
    conn.execute(sa.text("ALTER TABLE items ADD COLUMN assigned INTEGER NOT NULL DEFAULT 0"))
    conn.execute(sa.text("UPDATE items SET assigned = (SELECT COUNT(*) FROM assignments a WHERE a.item_id = items.id)"))


#: version reached -> migration from the version before it
MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _add_assigned_counter}


class StoreError(RewardlabError, ValueError):
    """An operation the data does not allow (unknown project, duplicate name, no access); says which."""


class AccessDenied(StoreError):
    """The user may not see or do this."""


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so one SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a bare path means a SQLite file."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=20,
                              max_overflow=40)

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # writers take the write lock up front (no deadlock on lock upgrade); readers never wait for it (WAL)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Store:
    """All reads and writes of the annotation database; each public method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and its busy handler retries by sleeping, which is unfair under load
        # (seconds of tail latency); queueing writers on an in-process lock instead keeps waits short and in order.
        # Other processes still coordinate through SQLite's own lock.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext())

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction (on SQLite it holds the write lock from its first statement)."""
        with self._write_lock, self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with conn.begin():
                yield conn

    def _run_tx(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction, again (after a short random pause) when the database aborted it
        as a deadlock victim, so concurrent annotators never see a transient conflict as an error."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._tx() as conn:
                    return work(conn)
            except sa.exc.OperationalError as error:
                if getattr(error.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES or attempt == MAX_ATTEMPTS:
                    raise
                time.sleep(float(np.random.default_rng().uniform(0.005, 0.05)) * attempt)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ schema
    def migrate(self) -> int:
        """Create the schema, or upgrade an older one; returns the version before (0 = new database)."""
        with self._tx() as conn:
            if not sa.inspect(conn).has_table("schema_info"):
                metadata.create_all(conn)
                conn.execute(schema_info.insert().values(version=SCHEMA_VERSION))
                return 0
            version = int(conn.execute(sa.select(schema_info.c.version)).scalar_one())
            if version > SCHEMA_VERSION:
                raise StoreError(f"database schema v{version} is newer than this rewardlab (v{SCHEMA_VERSION})")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](conn)
            conn.execute(schema_info.update().values(version=SCHEMA_VERSION))
            return version

    # ------------------------------------------------------------------ users
    def create_user(self, name: str, role: str = "annotator") -> str:
        """Create an account; returns its API token (shown once, stored only hashed)."""
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
        if not name.strip() or len(name) > 100:
            raise StoreError("user name must be 1–100 characters")
        token = secrets.token_urlsafe(32)
        with self._tx() as conn:
            if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
                raise StoreError(f"user {name!r} already exists")
            conn.execute(users.insert().values(name=name, role=role, token_hash=hash_token(token), created_at=time.time()))
        return token

    def rotate_token(self, name: str) -> str:
        """Give user ``name`` a new API token and return it (shown once); the old one stops working."""
        token = secrets.token_urlsafe(32)
        with self._tx() as conn:
            if not conn.execute(users.update().where(users.c.name == name).values(token_hash=hash_token(token))).rowcount:
                raise StoreError(f"no user {name!r}")
        return token

    def user_by_token(self, token: str) -> User | None:
        """The user an API token belongs to, or None for an unknown token."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users.c.id, users.c.name, users.c.role)
                               .where(users.c.token_hash == hash_token(token))).first()
        return User(row.id, row.name, row.role) if row else None

    def list_users(self) -> list[dict[str, Any]]:
        """Every user's name and role, in the order they were created."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(users.c.name, users.c.role).order_by(users.c.id))]

    # ------------------------------------------------------------------ projects
    def create_project(self, name: str, task_type: str, instructions: str = "", overlap: int = 1,
                       config: dict[str, Any] | None = None) -> int:
        """Create a project (its task config checked first) and return its id; a taken name is a `StoreError`."""
        task = tasks.task_type(task_type)
        if overlap < 1:
            raise StoreError("overlap must be at least 1")
        try:
            config = task.check_config(dict(config or {}))
        except tasks.LabelError as error:  # a bad project setting, not a bad label
            raise StoreError(str(error)) from None
        with self._tx() as conn:
            if conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).first():
                raise StoreError(f"project {name!r} already exists")
            return int(conn.execute(projects.insert().values(
                name=name, task_type=task_type, instructions=instructions, overlap=overlap,
                config=json.dumps(config), created_at=time.time())).inserted_primary_key[0])  # type: ignore[index]

    def project_id(self, name: str) -> int:
        """The id of the project called ``name``, or a `StoreError`."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).first()
        if row is None:
            raise StoreError(f"no project {name!r}")
        return int(row.id)

    def project(self, project_id: int, user: User) -> dict[str, Any]:
        """The project's settings, if ``user`` may see it (admins see all, annotators their own)."""
        with self.engine.connect() as conn:
            self._check_member(conn, project_id, user)
        return self.project_settings(project_id)

    def add_member(self, project_id: int, user_name: str) -> None:
        with self._tx() as conn:
            user_id = conn.execute(sa.select(users.c.id).where(users.c.name == user_name)).scalar()
            if user_id is None:
                raise StoreError(f"no user {user_name!r}")
            exists = conn.execute(sa.select(members).where(members.c.project_id == project_id,
                                                            members.c.user_id == user_id)).first()
            if not exists:
                conn.execute(members.insert().values(project_id=project_id, user_id=user_id))

    def members_of(self, project_id: int) -> list[str]:
        """The names of the project's members, in the order they joined."""
        query = (sa.select(users.c.name).join(members, members.c.user_id == users.c.id)
                 .where(members.c.project_id == project_id).order_by(users.c.id))
        with self.engine.connect() as conn:
            return [row.name for row in conn.execute(query)]

    def overlap_warning(self, project_id: int) -> str | None:
        """Why items cannot reach the project's overlap yet (fewer members than distinct annotators per item), or None."""
        settings = self.project_settings(project_id)
        names, overlap = self.members_of(project_id), settings["overlap"]
        if len(names) >= overlap:
            return None
        return (f"project {settings['name']!r} asks for {overlap} distinct annotators per item (--overlap) but has "
                f"{len(names)} member{'' if len(names) == 1 else 's'}{' (' + ', '.join(names) + ')' if names else ''}: "
                f"no item can get all {overlap} labels until {overlap - len(names)} more join "
                f"(`rewardlab annotate member NAMES --project {settings['name']}`; admins may label too)")

    def projects_of(self, user: User) -> list[dict[str, Any]]:
        """The projects ``user`` may see (id, name, task type): all of them for admins, their own for annotators."""
        query = sa.select(projects.c.id, projects.c.name, projects.c.task_type).order_by(projects.c.id)
        if not user.is_admin:
            query = query.join(members, members.c.project_id == projects.c.id).where(members.c.user_id == user.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def _check_member(self, conn: Connection, project_id: int, user: User) -> None:
        if not conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id)).first():
            raise AccessDenied(f"no project {project_id} for this user")
        if user.is_admin:
            return
        if not conn.execute(sa.select(members).where(members.c.project_id == project_id,
                                                     members.c.user_id == user.id)).first():
            raise AccessDenied(f"no project {project_id} for this user")  # same answer: do not reveal it exists

    # ------------------------------------------------------------------ items
    def import_items(self, project_id: int, payloads: list[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
        """Add (external id, payload) items; an id already in the project is skipped. Returns (added, skipped)."""
        with self._tx() as conn:
            task_type = conn.execute(sa.select(projects.c.task_type).where(projects.c.id == project_id)).scalar_one()
            existing = set(conn.execute(sa.select(items.c.external_id).where(items.c.project_id == project_id)).scalars())
            rows = []
            for external_id, payload in payloads:
                if external_id in existing:
                    continue
                existing.add(external_id)
                rows.append({"project_id": project_id, "external_id": external_id, "assigned": 0,
                             "payload": json.dumps(check_item(task_type, payload), ensure_ascii=False)})
            if rows:
                conn.execute(items.insert(), rows)
        return len(rows), len(payloads) - len(rows)

    # ------------------------------------------------------------------ assignment and labels
    def next_assignment(self, project_id: int, user: User, seed: int | None = None) -> dict[str, Any] | None:
        """The user's open assignment, or a new one: an item with fewer than ``overlap`` assignments that this
        user has not had, most-assigned first (so items reach their overlap, and agreement, early). Responses
        get a random screen order, recorded with it."""

        def claim(conn: Connection) -> dict[str, Any] | None:
            rng = np.random.default_rng(seed)  # per attempt: a retried claim shows the seeded order too
            self._check_member(conn, project_id, user)
            open_row = conn.execute(sa.select(assignments.c.id).where(
                assignments.c.user_id == user.id, assignments.c.project_id == project_id,
                assignments.c.done.is_(False)).limit(1)).first()
            if open_row is not None:
                return self._assignment_view(conn, int(open_row.id))
            overlap = conn.execute(sa.select(projects.c.overlap).where(projects.c.id == project_id)).scalar_one()
            mine = sa.select(assignments.c.item_id).where(assignments.c.user_id == user.id,
                                                          assignments.c.project_id == project_id)
            tried: list[int] = []
            skip_locked = True
            while True:
                # PostgreSQL: first SKIP LOCKED, so concurrent users claim different rows instead of queueing on one;
                # only when that finds nothing, wait for rows others hold (they may still have room). An item
                # filled meanwhile is skipped and we look again. FOR NO KEY UPDATE (key_share), because we only
                # change a counter: it must not block the foreign-key checks of other users' labels on the row,
                # which deadlocked under load with plain FOR UPDATE. SQLite serialises writers and ignores this.
                candidate = conn.execute(
                    sa.select(items.c.id, items.c.payload).where(items.c.project_id == project_id,
                                                                 items.c.assigned < overlap, items.c.id.not_in(mine),
                                                                 items.c.id.not_in(tried))
                    .order_by(items.c.assigned.desc(), items.c.id).limit(1)
                    .with_for_update(skip_locked=skip_locked, key_share=True)).first()
                if candidate is None:
                    if skip_locked:
                        skip_locked = False
                        continue
                    return None
                taken = conn.execute(items.update().where(items.c.id == candidate.id, items.c.assigned < overlap)
                                     .values(assigned=items.c.assigned + 1)).rowcount
                if not taken:
                    tried.append(int(candidate.id))
                    continue
                n = len(json.loads(candidate.payload)["responses"])
                order = [int(i) for i in rng.permutation(n)]
                assignment_id = conn.execute(assignments.insert().values(
                    item_id=candidate.id, user_id=user.id, project_id=project_id, shown_order=json.dumps(order),
                    assigned_at=time.time(), done=False)).inserted_primary_key[0]  # type: ignore[index]
                return self._assignment_view(conn, int(assignment_id))

        return self._run_tx(claim)

    def _assignment_view(self, conn: Connection, assignment_id: int) -> dict[str, Any]:
        row = conn.execute(sa.select(assignments.c.id, assignments.c.shown_order, items.c.payload, items.c.external_id)
                           .join(items, items.c.id == assignments.c.item_id)
                           .where(assignments.c.id == assignment_id)).one()
        payload, order = json.loads(row.payload), json.loads(row.shown_order)
        return {"assignment_id": row.id, "item": row.external_id, "prompt": payload["prompt"],
                "responses": [{"index": i, "text": payload["responses"][i]} for i in order],
                **({"steps": payload["steps"]} if "steps" in payload else {})}

    def submit(self, assignment_id: int, user: User, value: Any, seconds: float | None = None) -> tuple[int, bool]:
        """Store the label of one assignment. Returns (label id, created); resubmitting an answered assignment
        returns the stored label with created=False, so client retries never duplicate a label."""
        if seconds is not None and not 0 <= seconds <= 86_400:
            raise StoreError("field 'seconds': must be between 0 and 86400")

        def store_label(conn: Connection) -> tuple[int, bool]:
            row = conn.execute(sa.select(assignments.c.item_id, assignments.c.user_id, assignments.c.project_id,
                                         assignments.c.done, items.c.payload, projects.c.task_type, projects.c.config)
                               .join(items, items.c.id == assignments.c.item_id)
                               .join(projects, projects.c.id == assignments.c.project_id)
                               .where(assignments.c.id == assignment_id)).first()
            if row is None or row.user_id != user.id:
                raise AccessDenied(f"no assignment {assignment_id} for this user")
            if row.done:
                label_id = conn.execute(sa.select(labels.c.id).where(labels.c.assignment_id == assignment_id)).scalar_one()
                return int(label_id), False
            canonical = check_label(row.task_type, json.loads(row.config), json.loads(row.payload), value)
            label_id = conn.execute(labels.insert().values(
                assignment_id=assignment_id, project_id=row.project_id, item_id=row.item_id, user_id=user.id,
                value=json.dumps(canonical, ensure_ascii=False), seconds=seconds, created_at=time.time())
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(assignments.update().where(assignments.c.id == assignment_id).values(done=True))
            return int(label_id), True

        return self._run_tx(store_label)

    def progress(self, project_id: int, user: User) -> dict[str, int]:
        """This user's labels, and items still open to them (not had, fewer than overlap assignments)."""
        with self.engine.connect() as conn:
            self._check_member(conn, project_id, user)
            overlap = conn.execute(sa.select(projects.c.overlap).where(projects.c.id == project_id)).scalar_one()
            done = conn.execute(sa.select(sa.func.count()).select_from(labels).where(
                labels.c.project_id == project_id, labels.c.user_id == user.id)).scalar_one()
            mine = sa.select(assignments.c.item_id).where(assignments.c.user_id == user.id)
            remaining = conn.execute(sa.select(sa.func.count()).select_from(items).where(
                items.c.project_id == project_id, items.c.assigned < overlap, items.c.id.not_in(mine))).scalar_one()
            total = conn.execute(sa.select(sa.func.count()).select_from(items)
                                 .where(items.c.project_id == project_id)).scalar_one()
        return {"done": int(done), "available": int(remaining), "items": int(total)}

    def project_labels(self, project_id: int) -> list[dict[str, Any]]:
        """Every label of a project with its item, annotator, screen order and time (admin views, export)."""
        query = (sa.select(labels.c.id, labels.c.value, labels.c.seconds, labels.c.created_at, users.c.name.label("annotator"),
                           items.c.external_id.label("item"), items.c.payload, assignments.c.shown_order)
                 .join(users, users.c.id == labels.c.user_id).join(items, items.c.id == labels.c.item_id)
                 .join(assignments, assignments.c.id == labels.c.assignment_id)
                 .where(labels.c.project_id == project_id).order_by(labels.c.id))
        with self.engine.connect() as conn:
            return [{"id": r.id, "value": json.loads(r.value), "seconds": r.seconds, "created_at": r.created_at,
                     "annotator": r.annotator, "item": r.item, "payload": json.loads(r.payload),
                     "shown_order": json.loads(r.shown_order)} for r in conn.execute(query)]

    def project_settings(self, project_id: int) -> dict[str, Any]:
        """A project's name, task type, instructions, overlap and config, with no access check (`project` has one)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
        if row is None:
            raise StoreError(f"no project {project_id}")
        return {"id": row.id, "name": row.name, "task_type": row.task_type, "instructions": row.instructions,
                "overlap": row.overlap, "config": json.loads(row.config)}

    def count_labels(self) -> int:
        """How many labels the store holds, over all projects."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(labels)).scalar_one())


def open_store(url: str) -> Store:
    """Connect to ``url`` (a SQLite path or SQLAlchemy URL), creating or upgrading the schema."""
    store = Store(make_engine(url))
    store.migrate()
    return store
