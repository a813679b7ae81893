"""Command line for the server: ``serve_cmd`` (``accessproof serve``) and ``token_app``
(``accessproof token create|list|revoke``).

Mounted on the main CLI with ``app.command("serve")(serve_cmd)`` and ``app.add_typer(token_app, name="token")``.
Token commands work on the store directly, so on an embedded store run them while the server is stopped
(or use ``POST /api/v1/admin/tokens``); each creation and revocation is sealed in the ledger.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from accessproof.api.roles import ROLES
from accessproof.api.settings import ServerSettings
from accessproof.output import echo, one_line_errors
from accessproof.store import open_store, store_location

token_app = typer.Typer(help="API tokens: create (printed once), list, revoke.", no_args_is_help=True)
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar="ACCESSPROOF_STORE", help="Store directory or postgresql:// URL."),
]


def _by() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@one_line_errors
def serve_cmd(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Server settings (TOML): body limit, webhook secrets, OIDC; ACCESSPROOF_* variables "
        "override it.")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API, webhooks and dashboard over the store (OpenAPI at /openapi.json, docs at /docs)."""
    import uvicorn

    from accessproof.api.app import create_app

    settings = ServerSettings.load(config)
    app = create_app(store_location(store), settings=settings)
    echo(f"accessproof serving {store_location(store)} on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)


@token_app.command("create")
@one_line_errors
def token_create_cmd(
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    label: Annotated[str | None, typer.Option("--label", help="What the token is for.")] = None,
    store: StoreOpt = None,
) -> None:
    """Create an API token and print it (only its hash is kept: it cannot be shown again)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    s = open_store(store)
    try:
        from accessproof.api.auth import create_token  # FastAPI is imported only when needed

        token = create_token(s, role, label, by=_by())
    finally:
        s.close()
    typer.echo(token)


@token_app.command("list")
@one_line_errors
def token_list_cmd(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """Tokens (id, role, label, created, revoked); never the secrets."""
    s = open_store(store)
    try:
        from accessproof.api.auth import list_tokens

        rows = list_tokens(s)
    finally:
        s.close()
    for r in rows:
        if as_json:
            sys.stdout.write(orjson.dumps(r, default=str).decode() + "\n")
        else:
            state = f"revoked {r['revoked']:%Y-%m-%d %H:%M}" if r["revoked"] else "live"
            echo(f"{r['id']}  {r['role']:<8} {state:<24} {r['created']:%Y-%m-%d %H:%M}  {r['label'] or ''}")
    if not rows and not as_json:
        typer.echo("no tokens")


@token_app.command("revoke")
@one_line_errors
def token_revoke_cmd(
    token_id: Annotated[str, typer.Argument(help="The token's id (see 'token list').")],
    store: StoreOpt = None,
) -> None:
    """Revoke a token at once (sealed in the ledger)."""
    s = open_store(store)
    try:
        from accessproof.api.auth import revoke_token

        done = revoke_token(s, token_id, by=_by())
    finally:
        s.close()
    if not done:
        raise ValueError(f"no live token {token_id!r}")
    typer.echo(f"revoked {token_id}")
