"""Get a ready backend for a recipe: the image is built (or taken from the cache) first."""

from __future__ import annotations

import shutil
from typing import Callable

from images.build import build
from images.recipe import load_recipe
from images.store import find_image

from .libvirt.backend import LibvirtBackend, VMShape


def backend_for(recipe: str | None = None, shape: VMShape = VMShape(), *, build_missing: bool = True,
                log: Callable[[str], None] = print, events=None) -> LibvirtBackend:
    lr = load_recipe(recipe)
    image = find_image(lr.key)
    if image is None:
        if not build_missing:
            from .base import SandboxUnavailable

            raise SandboxUnavailable(f"image {lr.key} is not built: run `schedcp image build {lr.spec}`")
        log(f"image for recipe {lr.spec} is not built yet: building it (see README: Images for how long)")
        image = build(lr, log=log)
    bad = image.verify()
    if bad:
        from .base import SandboxUnavailable
        from .libvirt.backend import states_root

        msg = f"image {image.key} is corrupted: {', '.join(bad)} no longer match(es) image.lock.json"
        if not build_missing:
            raise SandboxUnavailable(msg + f"; rebuild it with `schedcp image build --force {lr.spec}`")
        log(msg + ": rebuilding it")
        shutil.rmtree(states_root() / image.key, ignore_errors=True)  # saved states of the old base
        image = build(lr, force=True, log=log)
    kwargs = {"events": events} if events else {}
    return LibvirtBackend(image, shape, **kwargs)
