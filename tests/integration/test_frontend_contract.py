"""docs/frontend.md, executed: every example, contract table and Realtime claim it makes.

Each ``<!-- test: … -->`` example runs in its own migrated database, inside a transaction
that is rolled back: the document's example data first (as the database owner), then the
examples it names in ``after=``, then the example itself as the Data API would run it
(``set local role authenticated`` plus the user's JWT claims in ``request.jwt.claims``, as
tests/integration/test_rls.py does). Its result is compared with the ``text`` block the
document shows, error text included. The contract tests compare the document's tables with
the catalog: which tables and columns exist, who may read and write them, and which are
streamed by Supabase Realtime and whether Realtime can apply RLS to them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import postgres, sql
from psycopg.adapt import Loader
from psycopg.conninfo import make_conninfo

from tests import frontend_doc
from tests.frontend_doc import Example, Expected, Fence
from traderctl.worker.config import SETTINGS
from traderctl.worker.sandbox.runtime import FailureKind

Conn = psycopg.Connection[Any]

DOC = frontend_doc.load()
USERS = {
    "A": uuid.UUID("aaaaaaaa-0000-0000-0000-000000000001"),
    "B": uuid.UUID("bbbbbbbb-0000-0000-0000-000000000002"),
}
ROOT = Path(__file__).resolve().parents[2]
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


class _AsText(Loader):
    """Return every value as Postgres prints it (t/f, {a,b}, jsonb text), as psql shows it."""

    def load(self, data: Any) -> str:
        return bytes(data).decode()


def _text_cursor(conn: Conn) -> psycopg.Cursor[Any]:
    cur = conn.cursor()
    for info in postgres.types:
        cur.adapters.register_loader(info.oid, _AsText)
        if info.array_oid:
            cur.adapters.register_loader(info.array_oid, _AsText)
    return cur


@contextmanager
def acting_as(conn: Conn, actor: str) -> Iterator[Conn]:
    """A savepoint running as the Data API role of `actor` (A, B, anon or service_role)."""
    role = "authenticated" if actor in USERS else actor
    claims: dict[str, str] = {"role": role}
    if actor in USERS:
        claims["sub"] = str(USERS[actor])
    with conn.transaction():
        conn.execute(f"set local role {role}")  # one of four fixed names
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn
        conn.execute("reset role")
        conn.execute("select set_config('request.jwt.claims', '', true)")


@dataclass
class Outcome:
    error: psycopg.Error | None = None
    tag: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def run(conn: Conn, example: Example) -> Outcome:
    """Run the example's SQL as its actor; an error is captured, not raised."""
    try:
        with acting_as(conn, example.actor):
            cur = _text_cursor(conn)
            cur.execute(example.sql)
            if cur.description is None:
                return Outcome(tag=cur.statusmessage)
            columns = tuple(d.name for d in cur.description)
            rows = tuple(
                tuple("NULL" if v is None else str(v) for v in row) for row in cur.fetchall()
            )
            return Outcome(tag=cur.statusmessage, columns=columns, rows=rows)
    except psycopg.Error as exc:
        return Outcome(error=exc)


def _cell_matches(expected: str, actual: str) -> bool:
    if re.fullmatch(r"<[^<>]+>", expected):
        return actual != "NULL"  # a per-run value: anything but NULL
    return expected == actual


def mismatch(expected: Expected, outcome: Outcome) -> str | None:
    """Why the outcome differs from what the document shows, or None."""
    if expected.is_error:
        if outcome.error is None:
            return f"expected ERROR {expected.sqlstate}, got {outcome.tag} {outcome.rows}"
        diag = outcome.error.diag
        got = (diag.sqlstate, diag.message_primary, diag.message_hint)
        want = (expected.sqlstate, expected.message, expected.hint)
        if got != want:
            return f"expected (sqlstate, message, hint) {want}, got {got}"
        if expected.detail is not None and diag.message_detail != expected.detail:
            return f"expected DETAIL {expected.detail!r}, got {diag.message_detail!r}"
        return None
    if outcome.error is not None:
        diag = outcome.error.diag
        return f"unexpected ERROR {diag.sqlstate}: {diag.message_primary}"
    if expected.tag is not None:
        return (
            None if outcome.tag == expected.tag else f"expected {expected.tag}, got {outcome.tag}"
        )
    if outcome.columns != expected.columns:
        return f"expected columns {expected.columns}, got {outcome.columns}"
    same = len(outcome.rows) == len(expected.rows) and all(
        all(_cell_matches(e, a) for e, a in zip(erow, arow, strict=True))
        for erow, arow in zip(expected.rows, outcome.rows, strict=True)
    )
    return None if same else f"expected rows {expected.rows}, got {outcome.rows}"


def prerequisites(example: Example) -> list[Example]:
    """The examples named in after=, recursively, in the order they must run."""
    ordered: list[Example] = []
    for name in example.after:
        dep = DOC.examples[name]
        for sub in [*prerequisites(dep), dep]:
            if sub not in ordered:
                ordered.append(sub)
    return ordered


@pytest.fixture(scope="module")
def db(pg_server: str, template_db: str) -> Iterator[Conn]:
    """One migrated database for this module: every test here rolls its changes back.

    (A database per example, as the `conn` fixture gives, costs seconds each on a busy
    machine; the examples never commit, so they can share one.)
    """
    name = f"t_frontend_{uuid.uuid4().hex[:12]}"
    drop = sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    try:
        url = make_conninfo(pg_server, dbname=name)
        with psycopg.connect(url, autocommit=True) as connection:
            yield connection
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(drop)


@contextmanager
def example_data(conn: Conn) -> Iterator[Conn]:
    """The document's example data, in a transaction that is rolled back afterwards.

    Identity sequences do not roll back, so they are restarted first: the document shows
    the ids a fresh database hands out.
    """
    with conn.transaction(force_rollback=True):
        for (sequence,) in conn.execute(
            "select pg_get_serial_sequence(format('public.%I', table_name), column_name)"
            " from information_schema.columns"
            " where table_schema = 'public' and is_identity = 'YES'"
        ).fetchall():
            conn.execute("select setval(%s, 1, false)", (sequence,))
        conn.execute("set local timezone = 'UTC'")
        conn.execute(DOC.fixture)
        yield conn


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


# -- the document's structure ----------------------------------------------------------------
KNOWN_CONTRACTS = {
    "tables",
    "rollout-tables",
    "streamed-tables",
    "signals-payload",
    "error-types",
    "retention",
}


def test_every_sql_block_is_a_tested_example() -> None:
    assert DOC.unmarked_sql == [], (
        f"docs/frontend.md has sql blocks without a <!-- test: … --> marker at lines "
        f"{DOC.unmarked_sql}; mark them so this test runs them"
    )
    assert DOC.fixture.strip(), "docs/frontend.md has no <!-- fixture --> sql block"
    assert len(DOC.examples) >= 20
    for example in DOC.examples.values():
        unknown = [name for name in example.after if name not in DOC.examples]
        assert not unknown, f"{example.name}: after= names unknown examples {unknown}"
        assert example.actor in {*USERS, "anon", "service_role"}, example.name
    for name in DOC.contracts:
        assert name in KNOWN_CONTRACTS or name.startswith("columns "), (
            f"docs/frontend.md has a contract {name!r} that no test reads"
        )
    assert set(DOC.contracts) >= KNOWN_CONTRACTS, KNOWN_CONTRACTS - set(DOC.contracts)


def test_js_snippets_name_the_tables_their_sql_uses() -> None:
    for example in DOC.examples.values():
        if example.js is None:
            continue
        tables = re.findall(r"\.from\('(\w+)'\)", example.js)
        assert tables, f"{example.name}: its JS snippet calls no .from('…')"
        for table in tables:
            assert f"public.{table}" in example.sql, (
                f"{example.name}: the JS reads {table}, the SQL does not"
            )


def test_rollout_section_points_to_rollout_doc_and_security_links_here() -> None:
    section = DOC.text.split("## Rollout and fallback", 1)
    assert len(section) == 2, "docs/frontend.md lost its 'Rollout and fallback' section"
    assert "](rollout.md" in section[1]
    security = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert "](frontend.md)" in security, "docs/security.md should link docs/frontend.md"


# -- the examples ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(DOC.examples))
def test_documented_example(db: Conn, name: str) -> None:
    example = DOC.examples[name]
    where = f"docs/frontend.md:{example.line} ({name})"
    with example_data(db):
        for dep in prerequisites(example):
            problem = mismatch(dep.expected, run(db, dep))
            assert problem is None, f"{where}: prerequisite {dep.name}: {problem}"
        problem = mismatch(example.expected, run(db, example))
        assert problem is None, f"{where}: {problem}"

        if example.index:
            # The documented index must serve this very query without sorting the user's
            # whole history (an incremental sort of rows tied on the index order is fine).
            # The example tables are tiny, where a scan plus a sort is cheapest, so both
            # are priced out: if the plan still has a full Sort, no index avoids it.
            with acting_as(db, example.actor):
                db.execute("set local enable_seqscan = off")
                db.execute("set local enable_sort = off")
                row = db.execute(
                    "explain (format json) " + example.sql.strip().rstrip(";")
                ).fetchone()
                db.execute("reset enable_seqscan")
                db.execute("reset enable_sort")
            assert row is not None
            nodes = list(_plan_nodes(row[0][0]["Plan"]))
            indexes = {n.get("Index Name") for n in nodes}
            assert example.index in indexes, f"{where}: plan uses {indexes}, not {example.index}"
            assert "Sort" not in {n["Node Type"] for n in nodes}, f"{where}: plan sorts fully"


# -- contract tables -------------------------------------------------------------------------
def _table_rows(name: str) -> list[list[str]]:
    content = DOC.contracts[name]
    assert isinstance(content, list), f"contract {name} must be a markdown table"
    return content


def _name(cell: str) -> str:
    match = re.fullmatch(r"`([\w\[\]]+)`", cell.strip())
    assert match, f"expected a `name` cell, got {cell!r}"
    return match.group(1)


@dataclass(frozen=True)
class TableRule:
    visible: str
    may: frozenset[str]
    streamed: bool


def documented_tables() -> dict[str, TableRule]:
    rules: dict[str, TableRule] = {}
    for contract in ("tables", "rollout-tables"):
        header, *rows = _table_rows(contract)
        assert header[:4] == ["Table", "Rows visible", "authenticated may", "Streamed"], header
        for row in rows:
            rules[_name(row[0])] = TableRule(
                visible=row[1],
                may=frozenset(p.strip() for p in row[2].split(",")),
                streamed={"yes": True, "no": False}[row[3]],
            )
    return rules


def public_tables(conn: Conn) -> set[str]:
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')"
    ).fetchall()
    return {r[0] for r in rows}


def published_tables(conn: Conn) -> set[str]:
    rows = conn.execute(
        "select schemaname, tablename from pg_publication_tables"
        " where pubname = 'supabase_realtime'"
    ).fetchall()
    assert all(r[0] == "public" for r in rows), f"tables outside public are streamed: {rows}"
    return {r[1] for r in rows}


def test_documented_tables_are_the_public_schema_with_their_privileges(db: Conn) -> None:
    rules = documented_tables()
    assert set(rules) == public_tables(db), "docs/frontend.md lists other tables than public"
    for table, rule in rules.items():
        held = set()
        for privilege in PRIVILEGES:
            # Column privileges count too (traders: INSERT and UPDATE of some columns);
            # DELETE exists only per table.
            check = (
                "select has_table_privilege('authenticated', %(t)s, %(p)s)"
                if privilege == "DELETE"
                else "select has_any_column_privilege('authenticated', %(t)s, %(p)s)"
            )
            row = db.execute(check, {"t": f"public.{table}", "p": privilege}).fetchone()
            if row and row[0]:
                held.add(privilege)
        assert held == rule.may, f"{table}: authenticated holds {held}, the doc says {rule.may}"
        row = db.execute(
            "select has_any_column_privilege('anon', %s, 'select, insert, update')"
            " or has_table_privilege('anon', %s, 'delete')",
            (f"public.{table}", f"public.{table}"),
        ).fetchone()
        assert row == (False,), f"anon has a privilege on {table}; the doc says it has none"


def test_documented_row_visibility_holds_for_both_users(db: Conn) -> None:
    rules = documented_tables()
    with example_data(db):
        for table, rule in rules.items():
            assert rule.visible in {"own", "all"}, f"{table}: unknown visibility {rule.visible}"
            total = db.execute(f"select count(*) from public.{table}").fetchone()
            assert total is not None
            some_hidden = False
            for actor, user in USERS.items():
                if rule.visible == "own":
                    own = db.execute(
                        f"select count(*) from public.{table} where user_id = %s", (user,)
                    ).fetchone()
                    assert own is not None
                    expected = own[0]
                    some_hidden = some_hidden or own[0] < total[0]
                else:
                    expected = total[0]
                with acting_as(db, actor):
                    seen = db.execute(f"select count(*) from public.{table}").fetchone()
                assert seen == (expected,), f"{table} as {actor}: sees {seen}, expected {expected}"
            if rule.visible == "all":
                assert total[0] > 0, f"the example data has no {table} rows to check"
            elif total[0] > 0:
                assert some_hidden, f"{table}: the example data cannot show rows are hidden"


def test_documented_columns_match_the_catalog(db: Conn) -> None:
    rules = documented_tables()
    rollout_tables = {_name(row[0]) for row in _table_rows("rollout-tables")[1:]}
    documented = {name.split(" ", 1)[1] for name in DOC.contracts if name.startswith("columns ")}
    assert documented == set(rules) - rollout_tables, "every table needs its column list"
    for table in documented:
        header, *rows = _table_rows(f"columns {table}")
        actual = db.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod),"
            " has_column_privilege('authenticated', a.attrelid, a.attname, 'select'),"
            " has_column_privilege('authenticated', a.attrelid, a.attname, 'insert'),"
            " has_column_privilege('authenticated', a.attrelid, a.attname, 'update')"
            " from pg_attribute a where a.attrelid = %s::regclass and a.attnum > 0"
            " and not a.attisdropped order by a.attnum",
            (f"public.{table}",),
        ).fetchall()
        listed = [(_name(row[0]), row[1]) for row in rows]
        assert listed == [(a[0], a[1]) for a in actual], f"columns of {table} (name, type)"
        assert all(a[2] for a in actual), f"authenticated cannot read every column of {table}"
        if "Insert" in header:
            yes_no = {"yes": True, "no": False}
            i, u = header.index("Insert"), header.index("Update")
            for row, act in zip(rows, actual, strict=True):
                assert (yes_no[row[i]], yes_no[row[u]]) == (act[3], act[4]), (
                    f"{table}.{act[0]}: insert/update privileges are {act[3]}/{act[4]}"
                )
        else:
            writable = [a[0] for a in actual if a[3] or a[4]]
            assert writable == [], f"{table} is documented read-only; writable: {writable}"


# -- Realtime --------------------------------------------------------------------------------
def documented_streamed_tables() -> dict[str, list[str]]:
    header, *rows = _table_rows("streamed-tables")
    assert header[:2] == ["Table", "Events"], header
    return {_name(row[0]): re.findall(r"\b(INSERT|UPDATE|DELETE)\b", row[1]) for row in rows}


def test_streamed_tables_are_the_publication(db: Conn) -> None:
    streamed = documented_streamed_tables()
    published = published_tables(db)
    assert set(streamed) == published, "the doc's streamed tables differ from supabase_realtime"
    flagged = {t for t, rule in documented_tables().items() if rule.streamed}
    assert flagged == published, "the tables' Streamed column differs from supabase_realtime"
    row = db.execute(
        "select puballtables, pubinsert, pubupdate, pubdelete from pg_publication"
        " where pubname = 'supabase_realtime'"
    ).fetchone()
    assert row is not None and row[0] is False, "supabase_realtime must list its tables"
    published_events = {"INSERT": row[1], "UPDATE": row[2], "DELETE": row[3]}
    for table, events in streamed.items():
        for event in events:
            assert published_events[event], f"{table}: {event} is not published"
    js = re.findall(r"table: '(\w+)'", DOC.text)
    assert js and set(js) <= published, f"the subscription snippets name {js}"


def test_streamed_tables_let_realtime_apply_rls(db: Conn) -> None:
    """What Supabase Realtime needs to check RLS on INSERT and UPDATE changes.

    For each change it looks the row up by primary key as the subscriber's role with the
    subscriber's claims, and sends only the columns that role may select. So every
    streamed table needs a primary key with a replica identity that carries it, RLS on, and
    SELECT for `authenticated`; and the lookup must find a row exactly for the users the
    document says may see it.
    """
    rules = documented_tables()
    with example_data(db):
        for table in published_tables(db):
            ident = db.execute(
                "select c.relreplident, c.relrowsecurity from pg_class c where c.oid = %s::regclass",
                (f"public.{table}",),
            ).fetchone()
            assert ident is not None
            assert ident[0] in {"d", "f"}, f"{table}: replica identity {ident[0]}"
            assert ident[1], f"{table} is streamed without RLS"
            pk = [
                r[0]
                for r in db.execute(
                    "select a.attname from pg_index i join pg_attribute a"
                    " on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
                    " where i.indrelid = %s::regclass and i.indisprimary",
                    (f"public.{table}",),
                ).fetchall()
            ]
            assert pk, f"{table} is streamed without a primary key: Realtime cannot check RLS"
            unreadable = db.execute(
                "select a.attname from pg_attribute a where a.attrelid = %s::regclass"
                " and a.attnum > 0 and not a.attisdropped"
                " and not has_column_privilege('authenticated', a.attrelid, a.attname, 'select')",
                (f"public.{table}",),
            ).fetchall()
            assert unreadable == [], f"{table}: payloads would lack {unreadable}"
            owner = "user_id" if rules[table].visible == "own" else "null::uuid"
            rows = db.execute(
                f"select {', '.join(pk)}, {owner} from public.{table}"  # names from the catalog
            ).fetchall()
            assert rows, f"the example data has no {table} rows to check"
            lookup = f"select exists (select 1 from public.{table} where " + " and ".join(
                f"{col} = %s" for col in pk
            )
            for row in rows:
                for actor, user in USERS.items():
                    with acting_as(db, actor):
                        found = db.execute(lookup + ")", row[: len(pk)]).fetchone()
                    should = rules[table].visible == "all" or row[-1] == user
                    assert found == (should,), f"{table} {row} as {actor}: visible={found}"


def test_signal_payload_is_the_row_as_the_user_reads_it(db: Conn) -> None:
    content = DOC.contracts["signals-payload"]
    assert isinstance(content, Fence) and content.lang == "json"
    payload = json.loads(content.body)
    assert set(payload) == {
        "schema",
        "table",
        "commit_timestamp",
        "eventType",
        "new",
        "old",
        "errors",
    }
    assert (payload["schema"], payload["table"], payload["eventType"]) == (
        "public",
        "signals",
        "INSERT",
    )
    assert payload["old"] == {} and payload["errors"] is None
    with example_data(db), acting_as(db, "A"):
        row = db.execute(
            "select to_jsonb(s) from public.signals s where s.id = %s", (payload["new"]["id"],)
        ).fetchone()
    assert row is not None, "user A cannot read the signal the payload shows"
    assert payload["new"] == row[0]


def test_shadow_rows_are_hidden_from_their_owner(db: Conn) -> None:
    """The rollout section's claim: shadow rows are invisible to the API and to Realtime."""
    shadow = {
        "trader_runs": "id = 1",
        "signals": "id = 1",
        "trader_matches": "trader_id = 'a0000000-0000-0000-0000-000000000001'",
    }
    with example_data(db):
        for table, key in shadow.items():
            db.execute(f"update public.{table} set shadow = true where {key}")
        for table, key in shadow.items():
            # The same primary-key lookup Realtime makes before delivering a change.
            with acting_as(db, "A"):
                found = db.execute(f"select exists (select 1 from public.{table} where {key})")
                assert found.fetchone() == (False,), f"user A sees a shadow row of {table}"


# -- error types, settings, retention ----------------------------------------------------------
def test_documented_error_types_are_the_runtimes() -> None:
    documented = {_name(row[0]) for row in _table_rows("error-types")[1:]}
    runtime = {kind.value for kind in FailureKind}
    assert documented - runtime == {"internal"}, documented ^ runtime
    assert runtime <= documented
    # `internal` is the worker's own label for a runtime bug (not a FailureKind).
    worker_code = (ROOT / "worker" / "runner").rglob("*.py")
    assert any('"internal"' in path.read_text(encoding="utf-8") for path in worker_code)


def _setting(env: str) -> str:
    by_env = {spec.env: spec for spec in SETTINGS.values()}
    assert env in by_env, f"docs/frontend.md names {env}, which is not a setting"
    default = by_env[env].default
    assert default is not None
    return default


def test_documented_settings_and_defaults() -> None:
    mentioned = re.findall(r"`(TRADER\w+)` \(default\s+`?([^`,)]+)`?", DOC.text)
    assert mentioned
    for env, default in mentioned:
        assert _setting(env) == default, f"{env}: default is {_setting(env)}, doc says {default}"
    for env in re.findall(r"`(TRADER\w+)`", DOC.text):
        _setting(env)
    for row in _table_rows("retention")[1:]:
        hours = re.match(r"(\d+) h", row[1])
        if hours:
            assert _setting(_name(row[2])) == hours.group(1), row


def test_retention_keeps_what_the_document_says(db: Conn) -> None:
    """backend.prune_history with the documented defaults, on rows of known ages."""
    signals_h = int(_setting("TRADERCTL_RETENTION_SIGNALS_HOURS"))
    runs_h = int(_setting("TRADERCTL_RETENTION_RUNS_HOURS"))
    user, trader = USERS["A"], uuid.uuid4()

    def run_aged(hours: int, *, signal: bool) -> int:
        """A run (and maybe its signal) finished `hours` ago; slots differ by the age."""
        row = db.execute(
            "insert into public.trader_runs (trader_id, user_id, slot, interval, status,"
            " started_at, finished_at) values (%s, %s, now() - make_interval(hours => %s),"
            " '1m', 'ok', now(), now() - make_interval(hours => %s)) returning id",
            (trader, user, hours, hours),
        ).fetchone()
        assert row is not None
        if signal:
            db.execute(
                "insert into public.signals (trader_id, user_id, run_id, slot, symbol,"
                " interval, created_at) select trader_id, user_id, id, slot, 'BTCUSDT',"
                " interval, finished_at from public.trader_runs where id = %s",
                (row[0],),
            )
        return int(row[0])

    with db.transaction(force_rollback=True):
        db.execute("insert into auth.users (id) values (%s)", (user,))
        db.execute(
            "insert into public.traders (id, user_id, name, enabled) values (%s, %s, 'r', false)",
            (trader, user),
        )
        kept = {
            "run without signals, younger than the runs limit": run_aged(runs_h - 1, signal=False),
            "run with a signal, older than the runs limit": run_aged(runs_h + 2, signal=True),
            "run with a signal, younger than the signals limit": run_aged(
                signals_h - 1, signal=True
            ),
        }
        gone = {
            "run without signals, older than the runs limit": run_aged(runs_h + 1, signal=False),
            "run with a signal, older than the signals limit": run_aged(signals_h + 1, signal=True),
        }
        db.execute(
            "select * from backend.prune_history(make_interval(hours => 1),"
            " make_interval(hours => %s), make_interval(hours => %s))",
            (runs_h, signals_h),
        )
        left = {r[0] for r in db.execute("select id from public.trader_runs").fetchall()}
        signal_runs = {r[0] for r in db.execute("select run_id from public.signals").fetchall()}
    for what, run_id in kept.items():
        assert run_id in left, f"retention deleted the {what}"
    for what, run_id in gone.items():
        assert run_id not in left, f"retention kept the {what}"
    assert signal_runs == {
        kept["run with a signal, older than the runs limit"],
        kept["run with a signal, younger than the signals limit"],
    }
