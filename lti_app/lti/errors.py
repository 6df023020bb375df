"""Launch failures, each with a default message an LMS administrator can act on."""

from __future__ import annotations


class LaunchError(Exception):
    """A launch was refused. ``reason`` is safe to show and to log (it never contains the token)."""

    status = 400
    default = "The launch could not be verified."

    def __init__(self, reason: str | None = None, status: int | None = None) -> None:
        self.reason = reason or self.default
        if status is not None:
            self.status = status
        super().__init__(self.reason)


class UnknownPlatform(LaunchError):
    status = 403
    default = ("This LMS is not registered with Caseload. Ask your Caseload administrator to register it "
               "(issuer and client ID) before launching.")


class PendingDeployment(LaunchError):
    status = 403


class ReplayedLaunch(LaunchError):
    default = ("This launch was already used. Launches are single-use: go back to the course and open Caseload "
               "again.")
