"""A Python test plugin that does what its `behave` setting says, to pin down
how Wicket serves a componentize-py component: verdicts, patches, its own
errors, traps, and the sandbox (files, environment, sockets, a fresh
instance per review)."""

import os

from wicket_sdk import Patch, PluginError, Review, Verdict, info, plugin

BEHAVIOURS = {"allow", "deny", "add-label", "error", "trap", "sandbox"}

# Module state: a fresh instance per review sees it as the snapshot left it.
reviews_seen = 0


def validate_settings(settings: dict) -> None:
    behave = settings.get("behave")
    if behave not in BEHAVIOURS:
        raise ValueError(f"behave must be one of {sorted(BEHAVIOURS)}, not {behave!r}")


def attempt(action) -> str:
    """What happened when trying `action`: its result, or the exception's class."""
    try:
        return f"got {action()!r}"
    except Exception as failure:  # noqa: BLE001 -- the class is the answer
        return type(failure).__name__


def read_file() -> str:
    with open("/etc/hostname") as file:
        return file.read()


def open_socket() -> str:
    import socket

    return str(socket.create_connection(("127.0.0.1", 9), timeout=1))


def review(review: Review, settings: dict) -> Verdict:
    global reviews_seen
    reviews_seen += 1
    behave = settings["behave"]
    info(f"python probe {behave} uid={review.uid}")
    if behave == "allow":
        return Verdict.allow().annotate("seen", str(reviews_seen))
    if behave == "deny":
        return Verdict.deny(f"python says no to {review.kind} {review.name}", code=418)
    if behave == "add-label":
        patch = Patch()
        if review.object.get("/metadata/labels") is None:
            patch.add("/metadata/labels", {})
        return Verdict.patch(patch.add("/metadata/labels/wicket.dev~1touched", "python"))
    if behave == "error":
        raise PluginError("the python probe cannot judge this")
    if behave == "trap":
        raise RuntimeError("an uncaught python exception")
    return (
        Verdict.allow()
        .warn(f"reviews seen: {reviews_seen}")
        .warn(f"file: {attempt(read_file)}")
        .warn(f"env: {dict(os.environ)}")
        .warn(f"socket: {attempt(open_socket)}")
    )


Plugin = plugin(review, validate_settings)
