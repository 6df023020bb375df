"""``caseload roster list|sync|oneroster-config``: what Caseload believes about a course, and pulling rosters.

``list`` and ``sync`` are the interface DESIGN.md §6 promises; ``oneroster-config`` stores a district's OneRoster
connection on a platform (the client secret is encrypted with the data keys).
"""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from lti_app import clock


def _session():  # type: ignore[no-untyped-def]
    from lti_app.services.uow import UnitOfWork

    return UnitOfWork()


@click.group("roster")
def roster_group() -> None:
    """Course rosters: list what Caseload holds, pull them from the LMS (NRPS) or the SIS (OneRoster)."""


@roster_group.command("list")
@click.option("--platform", "platform_name", required=True, help="Platform name (as in `caseload platform list`).")
@click.option("--course", "context_id", required=True, help="The course's LTI context id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def list_cmd(platform_name: str, context_id: str, as_json: bool) -> None:
    """What Caseload believes about a course: person, role, section, state, source and source time."""
    from lti_app.services.roster.reconcile import NotFound, find_course, find_platform, roster_lines

    with _session() as uow:
        try:
            platform = find_platform(uow.session, platform_name)
            course = find_course(uow.session, platform, context_id)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        lines = roster_lines(uow.session, course)
        if as_json:
            click.echo(json.dumps({"platform": platform.name, "course": course.lti_context_id, "title": course.title,
                                   "last_roster_sync_at": course.last_roster_sync_at.isoformat()
                                   if course.last_roster_sync_at else None,
                                   "enrollments": [line.as_json() for line in lines]}, indent=2))
            return
        active = sum(1 for line in lines if line.state == "active")
        click.echo(f"{course.title or course.lti_context_id} ({platform.name}, context {course.lti_context_id}): "
                   f"{active} active of {len(lines)} enrollments")
        if not lines:
            return
        headers = ("person", "role", "section", "state", "source", "source_time")
        rows = [(line.name, line.role, line.section, line.state, line.source,
                 clock.local(line.source_time).strftime("%Y-%m-%d %H:%M:%S %Z")) for line in lines]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for row in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@roster_group.command("sync")
@click.option("--platform", "platform_name", default=None, help="Only this platform.")
@click.option("--course", "context_id", default=None, help="Only this course (LTI context id; needs --platform).")
@click.option("--oneroster/--no-oneroster", default=True, show_default=True,
              help="Also pull OneRoster for platforms that have it (not with --course).")
@click.option("--full", is_flag=True, help="Make the OneRoster pull a full one (not a delta).")
@with_appcontext
def sync_cmd(platform_name: str | None, context_id: str | None, oneroster: bool, full: bool) -> None:
    """Pull rosters now: NRPS for every course with a roster URL (progress bar), then OneRoster."""
    from tqdm import tqdm

    from lti_app.models import Course
    from lti_app.services.roster import oneroster as reconcile_oneroster
    from lti_app.services.roster import reconcile

    if context_id and not platform_name:
        raise click.UsageError("--course needs --platform (course ids are only unique within a platform).")
    failures = 0
    with _session() as uow:
        platform_id = None
        try:
            if platform_name:
                platform_id = reconcile.find_platform(uow.session, platform_name).id
            if context_id:
                platform = reconcile.find_platform(uow.session, str(platform_name))
                course = reconcile.find_course(uow.session, platform, context_id)
                if not course.nrps_url:
                    raise click.ClickException(
                        "This course has no NRPS roster URL yet: it arrives with the first launch from the course.")
        except reconcile.NotFound as exc:
            raise click.ClickException(str(exc)) from None
        course_ids = reconcile.courses_to_reconcile(uow.session, platform_id, context_id)
        results = []
        bar = tqdm(course_ids, desc="NRPS courses", unit="course", file=sys.stderr, disable=None)
        for course_id in bar:
            outcome = reconcile.reconcile_course(uow.session, course_id, trigger="cli")
            course = uow.session.get(Course, course_id)
            results.append((course, outcome))
            bar.set_postfix_str(f"+{outcome.added} -{outcome.removed}")
        bar.close()
        for course, outcome in results:
            label = f"{course.lti_context_id} {course.title}".strip() if course else "?"
            if outcome.ok:
                click.echo(f"ok      {label}: {outcome.members} members, +{outcome.added} added, "
                           f"{outcome.updated} updated, -{outcome.removed} removed")
            else:
                failures += outcome.status == "failed"
                click.echo(f"{outcome.status:<7} {label}: {outcome.error}")
        if not course_ids:
            click.echo("No course with an NRPS roster URL matched.")
        if oneroster and not context_id:
            for pid in reconcile_oneroster.configured_platforms(uow.session):
                if platform_id is not None and pid != platform_id:
                    continue
                outcome = reconcile_oneroster.pull(uow.session, pid, full=True if full else None, trigger="cli")
                if outcome.ok:
                    click.echo(f"ok      OneRoster (platform {pid}): {outcome.members} enrollments read, "
                               f"+{outcome.added} added, {outcome.updated} updated, -{outcome.removed} removed")
                else:
                    failures += 1
                    click.echo(f"failed  OneRoster (platform {pid}): {outcome.error}")
    if failures:
        raise click.ClickException(f"{failures} sync(s) failed; see above and the sync health page.")


@roster_group.command("oneroster-config")
@click.option("--platform", "platform_name", required=True)
@click.option("--base-url", help="The SIS OneRoster server (https://sis.example.org or its /ims/oneroster/... root).")
@click.option("--token-url", help="The SIS OAuth 2.0 token endpoint.")
@click.option("--client-id")
@click.option("--client-secret", envvar="CASELOAD_ONEROSTER_CLIENT_SECRET",
              help="Or set CASELOAD_ONEROSTER_CLIENT_SECRET; prompted for when missing the first time.")
@click.option("--version", "or_version", type=click.Choice(["1.2", "1.1"]), default="1.2", show_default=True)
@click.option("--disable", is_flag=True, help="Keep the settings but stop pulling.")
@click.option("--show", is_flag=True, help="Print the stored settings (never the secret) and exit.")
@with_appcontext
def oneroster_config_cmd(platform_name: str, base_url: str | None, token_url: str | None, client_id: str | None,
                         client_secret: str | None, or_version: str, disable: bool, show: bool) -> None:
    """Connect a platform to the district SIS through OneRoster (OAuth 2.0 client credentials)."""
    from lti_app.services.roster import oneroster as reconcile_oneroster
    from lti_app.services.roster import reconcile

    with _session() as uow:
        try:
            platform = reconcile.find_platform(uow.session, platform_name)
        except reconcile.NotFound as exc:
            raise click.ClickException(str(exc)) from None
        current = reconcile_oneroster.describe(platform)
        if show:
            click.echo(json.dumps(current or {"configured": False}, indent=2))
            return
        base_url = base_url or (current or {}).get("base_url")
        token_url = token_url or (current or {}).get("token_url")
        client_id = client_id or (current or {}).get("client_id")
        if not (base_url and token_url and client_id):
            raise click.UsageError("--base-url, --token-url and --client-id are required the first time.")
        if not client_secret and current is None:
            client_secret = click.prompt("OneRoster client secret", hide_input=True)
        try:
            saved = reconcile_oneroster.configure(uow.session, platform, base_url=base_url, token_url=token_url,
                                                  client_id=client_id, client_secret=client_secret,
                                                  version=or_version, enabled=not disable)
        except reconcile_oneroster.ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        state = "enabled" if saved.enabled else "disabled"
        click.echo(f"OneRoster {saved.version} for platform {platform.name}: {saved.base_url} ({state}). "
                   "Run `caseload roster sync --platform {0} --full` to pull now.".format(platform.name))


def register(main: click.Group) -> None:
    main.add_command(roster_group)
