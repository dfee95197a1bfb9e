"""`traderctl db …`: the embedded Postgres and migrations.

With DATABASE_URL set, the database is someone else's (Supabase, a managed Postgres):
`start`, `stop` and `reset` refuse, while `status`, `url` and `migrate` act on it.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console

from traderctl.worker.config import load_settings
from traderctl.worker.db import connect, describe_url
from traderctl.worker.errors import TraderctlError
from traderctl.worker.local.embedded_pg import embedded_cluster, resolve_database_url
from traderctl.worker.migrate import migrate as run_migrations
from traderctl.worker.migrate import pending

__all__ = ["app"]

app = typer.Typer(
    help="Embedded Postgres (with pg_cron) and schema migrations.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


class ExternalDatabase(TraderctlError):
    """DATABASE_URL is set, so traderctl does not manage that server; unset it to use the embedded one."""


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
        err.print(f"started embedded Postgres on port {cluster.port} ({cluster.root})")
    else:
        err.print(f"embedded Postgres is already running on port {cluster.port}")
    out.print(cluster.url(), highlight=False)


@app.command()
def stop() -> None:
    """Stop the embedded cluster."""
    _embedded_only("stop")
    cluster = embedded_cluster(load_settings())
    if cluster.stop():
        err.print("stopped embedded Postgres")
    else:
        err.print("embedded Postgres was not running")


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
        row = conn.execute(
            "select current_setting('server_version'),"
            " exists (select from pg_extension where extname = 'pg_cron')"
        ).fetchone()
        assert row is not None
        info["server_version"], info["pg_cron"] = row
        info["pending_migrations"] = [f"{m.version}_{m.name}" for m in pending(conn)]
    info["running"] = True
    _emit(info, as_json)


def _emit(info: dict[str, object], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(info))
        return
    for key, value in info.items():
        out.print(f"{key:>20}: {value}", highlight=False)


@app.command()
def url() -> None:
    """Print the connection URL (DATABASE_URL, or the embedded cluster's)."""
    out.print(resolve_database_url(load_settings()), highlight=False, soft_wrap=True)


@app.command()
def migrate() -> None:
    """Apply pending migrations (each in a transaction) and record them like the Supabase CLI."""
    with connect(resolve_database_url(load_settings())) as conn:
        applied = run_migrations(conn)
    for migration in applied:
        err.print(f"applied {migration.version}_{migration.name}")
    out.print(f"{len(applied)} migration(s) applied", highlight=False)


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
    err.print(f"reset {cluster.root}; applied {len(applied)} migration(s)")
    out.print(cluster.url(), highlight=False)
