"""`tally import deals`: rows of another CRM's export become deals, idempotently.

A row's opportunity id is the deal's `external_id`: the first import creates the deal, a later
one changes only what the file changed (through the deal service, so every change is kept as
history and an unchanged row writes nothing). A row the rules refuse writes nothing and leaves
the rest of its batch alone; batches commit together.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import jobs
from app.db import get_database, session_scope
from app.deals import schemas, service
from app.deals.mapping import Mapping, MappingError, RowDeal, RowError, key, parse_row
from app.deals.models import PipelineStage
from app.errors import AppError
from app.models import Deal, DealStatus, Organization, User, UserAddress

# Rows per transaction: the batch's existing deals are read in one query, and a crash loses
# at most one batch (a new run completes it: the rows already in are unchanged).
BATCH = 500


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int  # in the file, the header being line 1
    external_id: str
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)
    stages_created: list[str] = field(default_factory=list)


def read_header(path: Path, delimiter: str = ",") -> list[str]:
    """`utf-8-sig`: spreadsheets save a byte-order mark first."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


def read_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the line is where the row starts (a quoted cell may span
    lines)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        _ = reader.fieldnames  # reads the header, which may span lines too
        start = reader.line_num + 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1


def count_rows(path: Path, delimiter: str = ",") -> int:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _ in csv.reader(handle, delimiter=delimiter)) - 1, 0)


def resolve_org(session: Session, org_id: int | None) -> Organization:
    """The organization asked for, or the only one there is."""
    if org_id is not None:
        org = session.get(Organization, org_id)
        if org is None:
            raise MappingError(f"no organization {org_id}")
        return org
    orgs = session.scalars(select(Organization).limit(2)).all()
    if len(orgs) != 1:
        raise MappingError("several organizations (or none): say which with --org")
    return orgs[0]


@dataclass(frozen=True)
class Owners:
    """The organization's users by every address and by name (both as `key` compares them)."""

    by_email: dict[str, int]
    by_name: dict[str, tuple[int, ...]]

    @classmethod
    def load(cls, session: Session, org_id: int) -> Owners:
        by_email = {
            email.casefold(): user_id
            for email, user_id in session.execute(
                select(UserAddress.email, UserAddress.user_id).where(UserAddress.org_id == org_id)
            )
        }
        by_name: dict[str, list[int]] = {}
        for user_id, email, name in session.execute(
            select(User.id, User.email, User.name).where(User.org_id == org_id)
        ):
            by_email.setdefault(email.casefold(), user_id)
            by_name.setdefault(key(name), []).append(user_id)
        return cls(by_email, {k: tuple(sorted(v)) for k, v in by_name.items()})

    def match(self, owner: str) -> int:
        if "@" in owner:
            found = self.by_email.get(owner.strip().casefold())
            if found is None:
                raise RowError(f"owner {owner!r}: no user has this address")
            return found
        ids = self.by_name.get(key(owner), ())
        if not ids:
            raise RowError(f"owner {owner!r}: no user has this name")
        if len(ids) > 1:
            listed = ", ".join(map(str, ids))
            raise RowError(f"owner {owner!r}: {len(ids)} users have this name ({listed})")
        return ids[0]


def plan_stages(
    mapping: Mapping, pipeline: Iterable[str], *, create: bool
) -> tuple[dict[str, str], list[str]]:
    """Pipeline stage names by `key` (mapped targets included), and the mapped targets to add
    at the end of the pipeline. The import changes the pipeline only when told to, and then
    only with a probability the mapping gives: a stage worth 0 would silently leave its deals
    out of every forecast."""
    names = {key(name): name for name in pipeline}
    missing = []
    for target in mapping.stages.values():
        if target.stage is None or key(target.stage) in names:
            continue
        given = {key(s): p for s, p in mapping.stage_probabilities.items()}
        if not create or key(target.stage) not in given:
            raise MappingError(
                f"stage {target.stage!r} is not in the pipeline: map it to one of "
                f"{', '.join(map(repr, names.values()))}, or pass --create-stages and give its "
                "probability under [stage_probabilities]"
            )
        names[key(target.stage)] = target.stage
        missing.append(target.stage)
    return names, missing


def _add_stages(session: Session, org_id: int, names: list[str], mapping: Mapping) -> None:
    given = {key(s): p for s, p in mapping.stage_probabilities.items()}
    last = session.scalar(
        select(func.max(PipelineStage.position)).where(PipelineStage.org_id == org_id)
    )
    for offset, name in enumerate(names, start=1):
        session.add(
            PipelineStage(
                org_id=org_id,
                position=(last if last is not None else -1) + offset,
                name=name,
                probability=given[key(name)],
                rotten_days=14,
            )
        )
    session.flush()


@dataclass
class _Context:
    org_id: int
    zone: ZoneInfo
    owners: Owners
    stages: dict[str, str]  # key -> the pipeline's spelling
    mapping: Mapping
    terms: service.OrgTerms  # loaded once: a first import of 3,512 rows read them 3,512 times
    seen: dict[str, int] = field(default_factory=dict)  # external id -> first line this run


@contextmanager
def _transaction(dry_run: Session | None) -> Iterator[Session]:
    """A unit of the import: its own transaction (app.db commits it), or, in a dry run, the one
    session of the whole run, rolled back at its end."""
    if dry_run is not None:
        yield dry_run
        return
    with session_scope() as session:
        yield session


def import_deals(
    path: Path,
    mapping: Mapping,
    *,
    org_id: int | None = None,
    dry_run: bool = False,
    create_stages: bool = False,
    progress: Callable[[int], None] = lambda _n: None,
    batch: int = BATCH,
) -> ImportReport:
    """Import the file; MappingError (before any row is written) when it cannot start."""
    mapping.check(read_header(path, mapping.delimiter))
    report = ImportReport()
    rehearsal = get_database().sessions() if dry_run else None
    try:
        with _transaction(rehearsal) as session:
            context = _prepare(session, org_id, mapping, create_stages, report)
        chunk: list[tuple[int, dict[str, str]]] = []
        for item in read_rows(path, mapping.delimiter):
            chunk.append(item)
            if len(chunk) == batch:
                with _transaction(rehearsal) as session:
                    _import_batch(session, context, chunk, report)
                progress(len(chunk))
                chunk = []
        if chunk:
            with _transaction(rehearsal) as session:
                _import_batch(session, context, chunk, report)
            progress(len(chunk))
    finally:
        if rehearsal is not None:
            rehearsal.rollback()
            rehearsal.close()
    return report


def _prepare(
    session: Session,
    org_id: int | None,
    mapping: Mapping,
    create_stages: bool,
    report: ImportReport,
) -> _Context:
    org = resolve_org(session, org_id)
    pipeline = session.scalars(select(PipelineStage.name).where(PipelineStage.org_id == org.id))
    stages, missing = plan_stages(mapping, pipeline.all(), create=create_stages)
    if missing:
        _add_stages(session, org.id, missing, mapping)
        report.stages_created = missing
    return _Context(
        org_id=org.id,
        zone=ZoneInfo(org.timezone),
        owners=Owners.load(session, org.id),
        stages=stages,
        mapping=mapping,
        terms=service.org_terms(session, org.id),
    )


def _import_batch(
    session: Session,
    context: _Context,
    chunk: list[tuple[int, dict[str, str]]],
    report: ImportReport,
) -> None:
    ids = [(row.get(context.mapping.column("id") or "") or "").strip() for _, row in chunk]
    existing = {
        deal.external_id: deal
        for deal in session.scalars(
            select(Deal).where(Deal.org_id == context.org_id, Deal.external_id.in_(ids))
        )
    }
    for (line, row), external_id in zip(chunk, ids, strict=True):
        report.rows += 1
        try:
            outcome = _import_row(session, context, line, row, existing)
        except (RowError, AppError, ValidationError) as error:
            report.refused.append(Refusal(line, external_id, _reason(error)))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    # once per batch, not per deal: the alert job reads the whole organization anyway
    jobs.mark_due(session, context.org_id, jobs.ALERTS)


def _import_row(
    session: Session,
    context: _Context,
    line: int,
    row: dict[str, str],
    existing: dict[str | None, Deal],
) -> str:
    parsed = parse_row(row, context.mapping, context.zone)
    first = context.seen.setdefault(parsed.external_id, line)
    if first != line:
        raise RowError(f"opportunity id {parsed.external_id!r} is also on line {first}")
    fields = _fields(parsed, context)
    deal = existing.get(parsed.external_id)
    # No savepoint per row: the deal engine raises its AppErrors before it writes anything
    # (it settles and checks, then stores; an update's late rate check is undone below), and
    # every other reason was found above. A savepoint would not help on SQLite anyway:
    # pysqlite's RELEASE of a savepoint that began the transaction commits it (--dry-run
    # wrote its rows when tried).
    if deal is None:
        data = schemas.DealCreate(external_id=parsed.external_id, **fields)
        service.create_deal(session, context.org_id, data, by_user_id=None, terms=context.terms)
        return "created"
    changed = _changes(deal, fields)
    if not changed:  # the common case of a second import: no query, no write
        return "unchanged"
    update = schemas.DealUpdate(**changed)
    try:
        written = service.apply_update(session, deal, update, by_user_id=None, terms=context.terms)
    except AppError:
        # the rate check comes after the fields are set on the deal: drop them unflushed
        session.expire(deal)
        raise
    return "updated" if written else "unchanged"


def _fields(parsed: RowDeal, context: _Context) -> dict[str, Any]:
    """The deal fields the row says; the ones it leaves unsaid are left out (kept as they are
    on an update, defaulted on a creation)."""
    fields: dict[str, Any] = {
        "name": parsed.name,
        "owner_id": context.owners.match(parsed.owner),
        "value": parsed.value,
        "status": parsed.status,
    }
    if parsed.status == DealStatus.open:
        assert parsed.stage is not None
        stage = context.stages.get(key(parsed.stage))
        if stage is None:
            raise RowError(f"stage {parsed.stage!r} is neither mapped nor in the pipeline")
        fields["stage"] = stage
    if parsed.currency is not None:  # the engine refuses one without a rate on its day
        fields["currency"] = parsed.currency
    if context.mapping.column("cost"):
        fields["cost"] = parsed.cost
    if context.mapping.column("expected_close"):
        fields["expected_close_date"] = parsed.expected_close_date
    if parsed.created_at is not None:
        fields["created_at"] = parsed.created_at
    if parsed.closed_at is not None:
        fields["closed_at"] = parsed.closed_at
    return fields


def _changes(deal: Deal, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields whose value differs from the deal's (amounts compared as numbers, moments
    as instants), so an unchanged row makes no write and no history."""
    # Decimal("4514") == Decimal("4514.00"), and aware datetimes compare as instants
    return {name: value for name, value in fields.items() if value != getattr(deal, name)}


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    if isinstance(error, AppError):
        return error.message
    return str(error)


def summary(report: ImportReport, *, dry_run: bool) -> list[str]:
    """What the command prints at the end: the counts, then every refused row."""
    lines = [
        f"{report.rows} rows: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.refused)} refused"
    ]
    if report.stages_created:
        lines.append(f"pipeline stages added: {', '.join(report.stages_created)}")
    lines += [f"  line {r.line} ({r.external_id or 'no id'}): {r.reason}" for r in report.refused]
    if dry_run:
        lines.append("dry run: nothing was written")
    return lines
