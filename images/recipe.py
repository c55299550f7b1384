"""Image recipes: a folder with ``recipe.yaml`` plus ``steps/*.sh`` (run in sorted order).

A recipe pins everything that decides what the guest is: the Debian suite and mirror,
the kernel (exact release, package version, and the sha256 of every kernel .deb), the
sorted package set, the disk size and the build steps. Its *cache key* is a hash of all
of that plus the guest files shipped with schedcp-bench (the init script) and the builder
version, so an unchanged recipe is never rebuilt and any change gets a new image.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .yamlspec import load_yaml_model

BUILDER_VERSION = 1
RECIPES_DIR = Path(__file__).parent / "recipes"
GUEST_DIR = Path(__file__).parent / "guest"
DEFAULT_RECIPE = "trixie-7.3-scx"


class RecipeError(Exception):
    """A recipe that is missing or invalid. The message is one line that says what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Strict):
    suite: str
    mirror: str
    extra_suites: list[str] = Field(default_factory=list)
    components: list[str] = Field(default_factory=lambda: ["main"])


class KernelDeb(_Strict):
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


class Kernel(_Strict):
    release: str = Field(description="`uname -r` the guest must report")
    version: str
    debs: list[KernelDeb]
    boot_initrd: bool = False
    cmdline: str = "console=ttyS0 quiet panic=-1"


class Recipe(_Strict):
    schema_version: int = 1
    name: str
    description: str = ""
    distribution: Distribution
    kernel: Kernel
    packages: list[str]
    disk_size: str = "8G"

    @field_validator("packages")
    @classmethod
    def _sorted(cls, v: list[str]) -> list[str]:
        if v != sorted(v):
            raise ValueError("packages must be sorted (keeps diffs and cache keys stable)")
        return v

    @field_validator("disk_size")
    @classmethod
    def _size(cls, v: str) -> str:
        if not re.fullmatch(r"\d+[MG]", v):
            raise ValueError("disk_size must look like 8G or 4096M")
        return v


class LoadedRecipe:
    """A validated recipe plus the folder it came from."""

    def __init__(self, recipe: Recipe, folder: Path):
        self.recipe = recipe
        self.folder = folder

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def steps(self) -> list[Path]:
        d = self.folder / "steps"
        return sorted(d.glob("*.sh")) if d.is_dir() else []

    def manifest(self) -> dict:
        """Everything the image depends on, as one dict: its hash is the cache key."""

        def digest(p: Path) -> str:
            return hashlib.sha256(p.read_bytes()).hexdigest()

        return {
            "builder_version": BUILDER_VERSION,
            "recipe": self.recipe.model_dump(mode="json"),
            "steps": {p.name: digest(p) for p in self.steps},
            "guest_files": {p.name: digest(p) for p in sorted(GUEST_DIR.iterdir()) if p.is_file()},
        }

    @property
    def key(self) -> str:
        blob = json.dumps(self.manifest(), sort_keys=True).encode()
        return f"{self.recipe.name}-{hashlib.sha256(blob).hexdigest()[:16]}"


def resolve_recipe_path(spec: str | None) -> Path:
    """A recipe name (folder under images/recipes), a folder, or a recipe.yaml path."""
    spec = spec or DEFAULT_RECIPE
    p = Path(spec)
    if p.is_file():
        return p
    if p.is_dir():
        return p / "recipe.yaml"
    named = RECIPES_DIR / spec / "recipe.yaml"
    if named.is_file():
        return named
    known = ", ".join(sorted(d.name for d in RECIPES_DIR.iterdir() if (d / "recipe.yaml").is_file()))
    raise RecipeError(f"no recipe {spec!r}: give a recipe folder, a recipe.yaml, or one of: {known}")


def load_recipe(spec: str | None = None) -> LoadedRecipe:
    path = resolve_recipe_path(spec)
    return LoadedRecipe(load_yaml_model(path, Recipe, RecipeError), path.parent)
