"""`traderctl db …`: the embedded Postgres and migrations.

With DATABASE_URL set, the database is someone else's (Supabase, a managed Postgres):
`start`, `stop` and `reset` refuse, while `status`, `url` and `migrate` act on it.
"""

from __future__ import annotations

import typer

from traderctl.cli import output
from traderctl.worker import queries
from traderctl.worker.config import load_settings
from traderctl.worker.db import connect, describe_url
from traderctl.worker.errors import ExternalDatabase
from traderctl.worker.local.embedded_pg import embedded_cluster, resolve_database_url
from traderctl.worker.migrate import migrate as run_migrations
from traderctl.worker.migrate import pending

__all__ = ["app"]

app = typer.Typer(
    help="Embedded Postgres (with pg_cron) and schema migrations.", no_args_is_help=True
)


def _embedded_only(action: str) -> None:
    settings = load_settings()
    if settings.database_url:
        raise ExternalDatabase(
            f"DATABASE_URL is set ({describe_url(settings.database_url)}), so `db {action}` "
            "does not apply: traderctl only manages its embedded cluster. Unset DATABASE_URL "
            "to use the embedded one."
        )


@app.command()
def start() -> None:
    """Start the embedded cluster (creating it on first use) and its database."""
    _embedded_only("start")
    cluster = embedded_cluster(load_settings())
    if cluster.start():
        output.note(f"started embedded Postgres on port {cluster.port} ({cluster.root})")
    else:
        output.note(f"embedded Postgres is already running on port {cluster.port}")
    output.line(cluster.url())


@app.command()
def stop() -> None:
    """Stop the embedded cluster."""
    _embedded_only("stop")
    cluster = embedded_cluster(load_settings())
    if cluster.stop():
        output.note("stopped embedded Postgres")
    else:
        output.note("embedded Postgres was not running")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show where the database is, whether it answers, and pending migrations. Exit 1 if down."""
    settings = load_settings()
    info: dict[str, object] = {}
    if settings.database_url:
        info["mode"] = "external"
        info["database"] = describe_url(settings.database_url)
    else:
        st = embedded_cluster(settings).status()
        info |= {
            "mode": "embedded",
            "data_dir": str(st.data_dir),
            "running": st.running,
            "pid": st.pid,
            "port": st.port,
        }
        if not st.running:
            _emit(info, as_json)
            raise typer.Exit(1)
        info["database"] = describe_url(resolve_database_url(settings))
    with connect(resolve_database_url(settings)) as conn:
        row = conn.execute(queries.get("admin_server_status")).fetchone()
        assert row is not None
        info["server_version"], info["pg_cron"] = row
        info["pending_migrations"] = [f"{m.version}_{m.name}" for m in pending(conn)]
    info["running"] = True
    _emit(info, as_json)


def _emit(info: dict[str, object], as_json: bool) -> None:
    if as_json:
        output.emit_json(info)
        return
    for key, value in info.items():
        output.line(f"{key:>20}: {value}")


@app.command()
def url() -> None:
    """Print the connection URL (DATABASE_URL, or the embedded cluster's)."""
    output.line(resolve_database_url(load_settings()))


@app.command()
def migrate() -> None:
    """Apply pending migrations (each in a transaction) and record them like the Supabase CLI."""
    with connect(resolve_database_url(load_settings())) as conn:
        applied = run_migrations(conn)
    for migration in applied:
        output.note(f"applied {migration.version}_{migration.name}")
    output.line(f"{len(applied)} migration(s) applied")


@app.command()
def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete the embedded cluster's data, start afresh and migrate."""
    _embedded_only("reset")
    settings = load_settings()
    if not yes:
        typer.confirm(f"Delete every byte under {settings.data_dir}?", abort=True)
    cluster = embedded_cluster(settings)
    cluster.reset()
    with connect(cluster.url()) as conn:
        applied = run_migrations(conn)
    output.note(f"reset {cluster.root}; applied {len(applied)} migration(s)")
    output.line(cluster.url())
