"""Image registry allow-list, in Python: refuse pods whose containers (init,
ordinary or ephemeral) run an image from a registry the settings do not
list, naming every offending image.

Settings (the manifest's [settings]):

    registries = ["registry.k8s.io/", "ghcr.io/acme/"]   # allowed prefixes

An image without a registry is Docker Hub's, as the kubelet pulls it:
`nginx:1.27` is `docker.io/library/nginx:1.27`.
"""

from wicket_sdk import Review, Verdict, plugin


def validate_settings(settings: dict) -> None:
    registries = settings.get("registries")
    if not isinstance(registries, list) or not registries:
        raise ValueError("registries must be a non-empty list of image prefixes")
    for prefix in registries:
        if not isinstance(prefix, str) or not prefix.endswith("/"):
            raise ValueError(f"each registry must be a string ending in '/', not {prefix!r}")


def qualified(image: str) -> str:
    """The image's full reference, with the registry Docker Hub images omit."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    if not rest:
        return f"docker.io/library/{image}"
    return f"docker.io/{image}"


def review(review: Review, settings: dict) -> Verdict:
    if review.object is None:
        return Verdict.allow()  # a delete
    registries = settings["registries"]
    refused = [
        f"{container.name} ({container.image})"
        for container in review.object.containers()
        if not qualified(container.image).startswith(tuple(registries))
    ]
    if not refused:
        return Verdict.allow()
    return Verdict.deny(
        f"images must come from {', '.join(registries)}; not allowed: {', '.join(refused)}"
    )


Plugin = plugin(review, validate_settings)
