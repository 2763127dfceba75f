"""Which images a caller's group may run (the policy's ``sharing.allowedImages`` and each group's
``allowedImages``): the image a session would run is judged, whatever runs it. A Docker container
runs its first image location; a Singularity container its ``location`` (a ``docker://`` URL is
judged as the image it names); a notebook the platform's notebook server image."""

from __future__ import annotations

from eb_operator.model.common import MessageItem, MessageLevel, MessageType
from eb_operator.model.errors import Path
from eb_operator.model.executables import DockerContainer, JupyterNotebook, SingularityContainer
from eb_operator.model.offerset import OfferSetRequest
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.sharing import OTHER
from eb_operator.model.tenancy import image_allowed


def _image(req: OfferSetRequest, policy: PlatformPolicy) -> tuple[str, Path, str] | None:
    """(the image the session runs, where the request names it, what it is)."""
    exe = req.executable
    if isinstance(exe, DockerContainer) and exe.image is not None and exe.image.locations:
        return exe.image.locations[0], ("executable", "image", "locations", 0), "image"
    if isinstance(exe, SingularityContainer) and exe.location:
        return exe.location, ("executable", "location"), "Singularity image"
    if isinstance(exe, JupyterNotebook):
        return policy.images.notebook, ("executable", "type"), "notebook server image"
    return None


def judge_images(req: OfferSetRequest, policy: PlatformPolicy, group: str) -> list[MessageItem]:
    """An ERROR when the image the session would run is not one ``group`` may run."""
    allowed = policy.sharing.images_of(group)
    found = _image(req, policy)
    if found is None or image_allowed(found[0], allowed):
        return []
    image, path, what = found
    assert allowed is not None
    template = "{path}: the {what} {image} is not allowed for {group}: it may run images under {allowed}"
    values = {
        "path": req.client_path(*path),
        "what": what,
        "image": image,
        "group": f"group {group}" if group != OTHER else "callers in no listed group",
        "allowed": ", ".join(allowed) if allowed else "(no image)",
    }
    return [MessageItem.make(MessageType.IMAGE_NOT_ALLOWED, MessageLevel.ERROR, template, values)]
