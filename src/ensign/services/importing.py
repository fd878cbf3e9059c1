"""Import a Flagsmith environment document (contract §4) as a new project and environment.

The import keeps everything that decides who gets which value: the client key (identity
hashing keys are `<client key>_<identifier>`), each state's `django_id` (the multivariate
seed), multivariate value ids (variant order), segment ids' order, priorities and the
identity overrides. So after an import, every identity gets what the reference would give it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.services import changes as change_path
from ensign.services.changes import Change
from ensign.services.import_checks import DocumentLimits, check_document
from ensign.services.import_writer import DocumentImporter, list_at, object_at, string_at
from ensign.services.keys import AdminPrincipal, new_client_key, new_server_key
from ensign.services.text import check_json_text, check_text
from ensign.settings import Settings
from ensign.storage import dialect
from ensign.storage import environments as environment_store
from ensign.storage import imports as import_store
from ensign.storage.models import (
    Environment,
    Project,
    ServerKey,
)
from ensign.storage.unit_of_work import UnitOfWork, Units

# Checked by check_document first; this only bounds the conversion itself.
# Each transaction of identity overrides holds SQLite's write lock while it runs (about a
# millisecond per identity on an idle machine); these bound a live write's wait for it.
IDENTITIES_PER_TRANSACTION = 500
TRANSACTION_SECONDS = 0.2
PAUSE_SECONDS = 0.12


@dataclass(frozen=True)
class ImportActor(AdminPrincipal):
    """Who an import is recorded as: an admin key's actor, the CLI ("system") or the demo
    seed, none of which needs a key of its own."""

    who: str = "system"

    @property
    def actor(self) -> str:
        return self.who


def import_actor(organisation_id: int, actor: str) -> ImportActor:
    return ImportActor(organisation_id=organisation_id, key_id=0, name="", who=actor)


@dataclass(frozen=True)
class ImportResult:
    project_id: int
    environment_id: int
    environment_key: str
    server_key: str

    def as_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "environment_key": self.environment_key,
            "server_key": self.server_key,
        }


def import_document(
    session: Session,
    organisation_id: int,
    document: Any,
    *,
    project_name: str | None = None,
    actor: str = "system",
    limits: DocumentLimits | None = None,
) -> ImportResult:
    """Create a project and an environment equivalent to `document` in the caller's
    transaction (for small documents: the demo, tests). The document is checked against the
    admin API's limits before anything is written."""
    _check(document, project_name, limits)
    importer = _start(session, organisation_id, document, project_name)
    for identity_doc in list_at(document, "identity_overrides"):
        importer.add_identity_overrides(identity_doc)
    # The caller's transaction is the unit: the environment is new, so nothing has cached it
    # and no revision needs to change when it commits.
    unit = UnitOfWork(session, writable=True)
    return _finish(unit, importer, import_actor(organisation_id, actor))


def _check(document: Any, project_name: str | None, limits: DocumentLimits | None) -> None:
    """Everything that can be refused is refused before anything is written."""
    if project_name is not None:
        check_text(project_name, "project_name")
    check_json_text(document)
    check_document(document, limits or DocumentLimits.from_settings(Settings()))


def import_document_in_batches(
    units: Units,
    principal: AdminPrincipal,
    document: Any,
    *,
    project_name: str | None = None,
    limits: DocumentLimits | None = None,
    batch_size: int = IDENTITIES_PER_TRANSACTION,
) -> ImportResult:
    """`import_document` in many short units of work, as `principal` (see `import_actor`).

    Identity overrides are written at most `batch_size` identities (and about
    TRANSACTION_SECONDS) at a time, so that live writes never
    wait long for the database; the environment stays unknown to the SDK until the last
    unit, which records the import as one change, and everything written is removed if any
    fails.
    """
    _check(document, project_name, limits)
    with units.write() as unit:
        importer = _start(unit.session, principal.organisation_id, document, project_name)
    try:
        overrides = list_at(document, "identity_overrides")
        position = 0
        while position < len(overrides):
            with units.write() as unit:
                importer.session = unit.session
                # Bounded by time as well as size: on a busy machine a few hundred identities
                # can take seconds, and live writes wait for the whole transaction.
                deadline = time.monotonic() + TRANSACTION_SECONDS
                end = min(position + batch_size, len(overrides))
                while position < end and time.monotonic() < deadline:
                    importer.add_identity_overrides(overrides[position])
                    position += 1
                waiting_writers_poll = not dialect.is_postgres(unit.session)
            if waiting_writers_poll:
                # SQLite's waiting writers poll for the lock, sleeping up to 100 ms between
                # tries; taking it again at once would starve them for the whole import.
                time.sleep(PAUSE_SECONDS)
        with units.write() as unit:
            importer.session = unit.session
            return _finish(unit, importer, principal)
    except BaseException:
        with units.write() as unit:
            import_store.delete_project(unit.session, importer.project.id)
        raise


def _start(
    session: Session, organisation_id: int, document: dict[str, Any], project_name: str | None
) -> DocumentImporter:
    """The project, the hidden environment, its features and segments: one transaction."""
    project_doc = object_at(document, "project")
    # Older documents have no environment name; the environment still needs one.
    name = document.get("name") or "Imported environment"
    api_key = string_at(document, "api_key")
    if environment_store.environment_by_key(session, api_key) is not None:
        # Keys are global; a second import of one document gets a key of its own (and so
        # hashes identities differently from the reference, which the caller is told).
        api_key = new_client_key()
    project = Project(
        organisation_id=organisation_id,
        name=project_name or string_at(project_doc, "name"),
        hide_disabled_flags=bool(project_doc.get("hide_disabled_flags") or False),
        enable_realtime_updates=bool(project_doc.get("enable_realtime_updates") or False),
    )
    import_store.insert(session, project)
    environment = Environment(
        project_id=project.id,
        name=name,
        api_key=api_key,
        allow_client_traits=bool(document.get("allow_client_traits", True)),
        hide_sensitive_data=bool(document.get("hide_sensitive_data", False)),
        hide_disabled_flags=document.get("hide_disabled_flags"),
        use_identity_composite_key_for_hashing=True,
        use_identity_overrides_in_local_eval=bool(
            document.get("use_identity_overrides_in_local_eval", True)
        ),
        importing=True,
    )
    import_store.insert(session, environment)
    importer = DocumentImporter(session, project, environment, project_doc)
    for state in list_at(document, "feature_states"):
        importer.add_state(state, scope="")
    importer.ensure_defaults()
    for segment_doc in list_at(project_doc, "segments"):
        importer.add_segment(segment_doc)
    if importer.kept_segment_ids:
        dialect.sync_id_sequence(session, "segments")
    return importer


def _finish(
    unit: UnitOfWork, importer: DocumentImporter, principal: AdminPrincipal
) -> ImportResult:
    """Make the environment known, with a server key, and record the import as one change
    (a summary, not a change per row: a large document stays fast): the last unit."""
    session = unit.session
    project, api_key = importer.project, importer.environment.api_key
    environment = import_store.environment_by_id(session, importer.environment.id)
    assert environment is not None
    environment.importing = False
    server_key = new_server_key()
    import_store.insert(
        session, ServerKey(environment_id=environment.id, key=server_key, name="imported")
    )
    change_path.apply(
        unit,
        principal,
        [
            Change(
                resource_type="environment",
                resource_id=api_key,
                action="import",
                log=(
                    f"Imported environment document '{environment.name}' as project "
                    f"'{project.name}'"
                ),
                project_id=project.id,
                environment_ids=(environment.id,),
                after={
                    "project_id": project.id,
                    "environment_key": api_key,
                    "features": len(importer.features),
                    "segments": importer.segment_count,
                    "identities": importer.identity_count,
                },
            )
        ],
    )
    return ImportResult(project.id, environment.id, api_key, server_key)
