"""``caseload platform``: register LMS platforms (DESIGN.md §6) and approve their deployments."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from lti_app import clock
from lti_app.models import Platform
from lti_app.services.platforms.registry import NewPlatform, PlatformInvalid, add_platform, set_deployment_status
from lti_app.services.uow import UnitOfWork


@click.group("platform")
def platform_group() -> None:
    """LMS platforms (LTI 1.3 registrations) and their deployments."""


@platform_group.command("add")
@click.option("--name", required=True, help="Short name, used in webhook URLs.")
@click.option("--lms", type=click.Choice(["canvas", "moodle", "generic"]), required=True)
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--auth-login-url", required=True)
@click.option("--auth-token-url", required=True)
@click.option("--keyset-url", required=True)
@click.option("--deployment-id", "deployment_ids", multiple=True, help="Pre-approved deployment id (repeatable).")
@click.option("--live-events-keyset-url", default=None)
@click.option("--webhook-secret", default=None)
@with_appcontext
def add_cmd(name: str, lms: str, issuer: str, client_id: str, auth_login_url: str, auth_token_url: str,
            keyset_url: str, deployment_ids: tuple[str, ...], live_events_keyset_url: str | None,
            webhook_secret: str | None) -> None:
    """Register an LMS platform."""
    with UnitOfWork() as uow:
        try:
            platform, secret = add_platform(uow.session, NewPlatform(
                name, lms, issuer, client_id, auth_login_url, auth_token_url, keyset_url, deployment_ids,
                live_events_keyset_url, webhook_secret))
        except PlatformInvalid as exc:
            raise click.ClickException(str(exc)) from None
        uow.commit()
        click.echo(f"Registered platform {platform.name} ({platform.lms}) with {len(deployment_ids)} active deployment(s).")
        if secret:
            click.echo(f"Webhook secret for the Moodle companion plugin (shown once): {secret}")


@platform_group.command("registration-url")
@click.option("--hours", type=float, default=72, show_default=True, help="How long the link stays valid.")
@click.option("--label", default=None, help="A note for yourself, e.g. which LMS the link is for.")
@with_appcontext
def registration_url_cmd(hours: float, label: str | None) -> None:
    """Create a one-time Dynamic Registration link for an LMS administrator."""
    from flask import current_app

    from lti_app.services.platforms.dynamic_registration import issue_registration_link

    with UnitOfWork() as uow:
        try:
            url, invite = issue_registration_link(uow.session, current_app.config["CASELOAD"].base_url, hours=hours,
                                                  label=label, actor_id=None, via="cli")
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        uow.commit()
        expires = clock.local(invite.expires_at).strftime("%Y-%m-%d %H:%M %Z")
    click.echo(url)
    click.echo(f"One LMS can register Caseload with this link until {expires}. Paste it where the LMS asks for the "
               "tool's registration URL (Moodle: Tool URL; Canvas: LTI Registration). It is shown only once.")


@platform_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_cmd(as_json: bool) -> None:
    """List registered platforms and deployments (never secrets)."""
    with UnitOfWork() as uow:
        rows: list[dict[str, Any]] = []
        for p in uow.session.scalars(select(Platform).order_by(Platform.name)):
            rows.append({"name": p.name, "lms": p.lms, "issuer": p.issuer, "client_id": p.client_id,
                         "auth_login_url": p.auth_login_url, "auth_token_url": p.auth_token_url,
                         "keyset_url": p.keyset_url, "live_events_keyset_url": p.live_events_keyset_url,
                         "status": p.status,
                         "deployments": [{"deployment_id": d.deployment_id, "status": d.status} for d in p.deployments]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No platforms registered.")
    for r in rows:
        deps = ", ".join(f"{d['deployment_id']} ({d['status']})" for d in r["deployments"]) or "none"
        click.echo(f"{r['name']}\t{r['lms']}\t{r['issuer']}\tclient {r['client_id']}\tdeployments: {deps}")


def _set(platform: str, deployment_id: str, status: str) -> None:
    with UnitOfWork() as uow:
        try:
            set_deployment_status(uow.session, platform, deployment_id, status)
        except PlatformInvalid as exc:
            raise click.ClickException(str(exc)) from None
        uow.commit()
    click.echo(f"Deployment {deployment_id} of {platform} is now {status}.")


@platform_group.command("approve-deployment")
@click.option("--platform", required=True)
@click.option("--deployment-id", required=True)
@with_appcontext
def approve_cmd(platform: str, deployment_id: str) -> None:
    """Allow launches from a (pending) deployment."""
    _set(platform, deployment_id, "active")


@platform_group.command("disable-deployment")
@click.option("--platform", required=True)
@click.option("--deployment-id", required=True)
@with_appcontext
def disable_cmd(platform: str, deployment_id: str) -> None:
    """Refuse launches from a deployment."""
    _set(platform, deployment_id, "disabled")


@platform_group.command("webhooks")
@click.option("--name", "platform_name", required=True, help="The platform's name in Caseload.")
@click.option("--live-events-keyset-url", default=None,
              help="Canvas: the key set that signs Live Events (empty string to remove).")
@click.option("--new-secret", is_flag=True, help="Moodle: generate a new webhook secret and print it once.")
@click.option("--secret", default=None, help="Moodle: set this webhook secret (24+ characters) instead.")
@click.option("--canvas-root-account-uuid", default=None,
              help="Canvas: the root account whose Live Events are accepted (learned from the first launch).")
@with_appcontext
def webhooks_cmd(platform_name: str, live_events_keyset_url: str | None, new_secret: bool, secret: str | None,
                 canvas_root_account_uuid: str | None) -> None:
    """Configure pushed roster events for an existing platform, and print its webhook URL."""
    from flask import current_app

    from lti_app.services.platforms.registry import configure_webhooks

    with UnitOfWork() as uow:
        try:
            platform, generated = configure_webhooks(uow.session, platform_name,
                                                     live_events_keyset_url=live_events_keyset_url,
                                                     new_secret=new_secret, secret=secret,
                                                     canvas_root_account_uuid=canvas_root_account_uuid)
        except PlatformInvalid as exc:
            raise click.ClickException(str(exc)) from None
        uow.commit()
        base = current_app.config["CASELOAD"].base_url
        family = "canvas" if platform.lms == "canvas" else "moodle"
        click.echo(f"Webhook URL: {base}/webhooks/{family}/{platform.name}")
        if platform.lms == "canvas":
            click.echo(f"Live Events key set: {platform.live_events_keyset_url or '(none: Live Events are refused)'}")
            click.echo("Canvas root account: " + (platform.canvas_root_account_uuid
                                                  or "(not known yet: learned from the first launch)"))
        if generated:
            click.echo(f"New webhook secret (shown once; set it in the Moodle plugin): {generated}")


@platform_group.group("frame-origin")
def frame_origin_group() -> None:
    """LMS page origins allowed to show Caseload in a frame (CSP frame-ancestors), per platform.

    Canvas course pages live on the district's host (https://district.instructure.com or a vanity domain), not on
    the issuer https://canvas.instructure.com: add that host here, or let the first launch learn it."""


def _framing_change(platform_name: str, origin: str, change: str) -> None:
    from lti_app.security import invalidate_frame_cache
    from lti_app.services.platforms import framing

    with UnitOfWork() as uow:
        try:
            platform = framing.find_platform(uow.session, platform_name)
            fn = framing.add_origin if change == "add" else framing.remove_origin
            done = fn(uow.session, platform, origin, actor_id=None, via="cli")
        except framing.FramingInvalid as exc:
            raise click.ClickException(str(exc)) from None
        uow.commit()
    invalidate_frame_cache()
    verb = "may now show" if change == "add" else "may no longer show"
    click.echo(f"Pages on {done} {verb} Caseload for platform {platform_name} (every web process within a minute).")


@frame_origin_group.command("add")
@click.option("--name", "platform_name", required=True, help="The platform's name in Caseload.")
@click.argument("origin")
@with_appcontext
def frame_origin_add_cmd(platform_name: str, origin: str) -> None:
    """Allow pages on ORIGIN (https://host[:port]) to frame Caseload for a platform."""
    _framing_change(platform_name, origin, "add")


@frame_origin_group.command("remove")
@click.option("--name", "platform_name", required=True, help="The platform's name in Caseload.")
@click.argument("origin")
@with_appcontext
def frame_origin_remove_cmd(platform_name: str, origin: str) -> None:
    """Stop allowing pages on ORIGIN to frame Caseload for a platform (a later launch from it may add it again)."""
    _framing_change(platform_name, origin, "remove")


@frame_origin_group.command("list")
@click.option("--name", "platform_name", required=True, help="The platform's name in Caseload.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def frame_origin_list_cmd(platform_name: str, as_json: bool) -> None:
    """The origins allowed to frame Caseload for a platform, and where each came from."""
    from lti_app.services.platforms import framing

    with UnitOfWork() as uow:
        try:
            platform = framing.find_platform(uow.session, platform_name)
        except framing.FramingInvalid as exc:
            raise click.ClickException(str(exc)) from None
        rows = framing.list_origins(uow.session, platform)
    if as_json:
        click.echo(json.dumps([{"origin": r.origin, "source": r.source} for r in rows], indent=2))
        return
    for r in rows:
        click.echo(f"{r.origin}\t{r.source}")


def register(main: click.Group) -> None:
    main.add_command(platform_group)
