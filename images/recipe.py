"""Image recipes: a folder with ``recipe.yaml`` plus ``steps/*.sh`` (run in sorted order;
``steps/lib/`` holds shell they source).

A recipe pins everything that decides what the guest is: the Debian suite and mirror,
the kernel (exact release, package version, and the sha256 of every kernel .deb), the
sorted package set, the disk size and the build steps. Its *cache key* is a hash of all
of that plus the guest files shipped with schedcp-bench (the init script) and the builder
version, so an unchanged recipe is never rebuilt and any change gets a new image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class Feature(_Strict):
    """An optional part of the image: the steps that add it. Workloads that need it say
    so (``requirements.image_features``) and are skipped, with the reason, on an image
    built without it."""

    description: str = ""
    steps: list[str] = Field(min_length=1)


class Profile(_Strict):
    """A variant of the recipe that leaves some features out (like mkosi's profiles):
    built with ``RECIPE@PROFILE`` or ``SCHEDCP_IMAGE_PROFILE``, cached under its own key."""

    description: str = ""
    without: list[str] = Field(min_length=1)


class Recipe(_Strict):
    schema_version: int = 1
    name: str
    description: str = ""
    distribution: Distribution
    kernel: Kernel
    packages: list[str]
    disk_size: str = "8G"
    features: dict[str, Feature] = Field(default_factory=dict)
    profiles: dict[str, Profile] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _profiles_name_features(self):
        for pname, prof in self.profiles.items():
            unknown = [f for f in prof.without if f not in self.features]
            if unknown:
                raise ValueError(f"profile {pname!r} leaves out unknown features {unknown}; "
                                 f"features: {sorted(self.features)}")
        return self

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
    """A validated recipe plus the folder it came from, and the profile it is built with
    (None: every feature)."""

    def __init__(self, recipe: Recipe, folder: Path, profile: str | None = None):
        self.recipe = recipe
        self.folder = folder
        self.profile = profile
        names = {p.name for p in self._all_steps()}
        for fname, feat in recipe.features.items():
            missing = [s for s in feat.steps if s not in names]
            if missing:
                raise RecipeError(f"{folder / 'recipe.yaml'}: feature {fname!r} names steps that are not in "
                                  f"{folder / 'steps'}: {missing}")

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def spec(self) -> str:
        """How to name this recipe and profile again (``schedcp image build SPEC``)."""
        return f"{self.name}@{self.profile}" if self.profile else self.name

    @property
    def features(self) -> list[str]:
        """The recipe's features this build contains."""
        without = set(self.recipe.profiles[self.profile].without) if self.profile else set()
        return sorted(f for f in self.recipe.features if f not in without)

    def _all_steps(self) -> list[Path]:
        d = self.folder / "steps"
        return sorted(d.glob("*.sh")) if d.is_dir() else []

    @property
    def steps(self) -> list[Path]:
        """The build steps, without those of the features the profile leaves out."""
        keep = set(self.features)
        dropped = {s for f, feat in self.recipe.features.items() if f not in keep for s in feat.steps}
        return [p for p in self._all_steps() if p.name not in dropped]

    def manifest(self) -> dict:
        """Everything the image depends on, as one dict: its hash is the cache key."""

        def digest(p: Path) -> str:
            return hashlib.sha256(p.read_bytes()).hexdigest()

        m = {
            "builder_version": BUILDER_VERSION,
            "recipe": self.recipe.model_dump(mode="json"),
            "steps": {p.name: digest(p) for p in self.steps},
            # shell sourced by the steps (steps/lib/*): part of what they do
            "step_lib": {p.name: digest(p) for p in sorted((self.folder / "steps" / "lib").glob("*")) if p.is_file()},
            "guest_files": {p.name: digest(p) for p in sorted(GUEST_DIR.iterdir()) if p.is_file()},
        }
        if self.profile:
            m["profile"] = self.profile
        return m

    @property
    def key(self) -> str:
        blob = json.dumps(self.manifest(), sort_keys=True).encode()
        prefix = f"{self.recipe.name}-{self.profile}" if self.profile else self.recipe.name
        return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:16]}"


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


PROFILE_ENV = "SCHEDCP_IMAGE_PROFILE"


def load_recipe(spec: str | None = None) -> LoadedRecipe:
    """``spec``: a recipe (see :func:`resolve_recipe_path`), optionally ``@PROFILE``.
    Without one, the profile named by $SCHEDCP_IMAGE_PROFILE is used when the recipe
    has it (a recipe without that profile is built whole)."""
    spec = spec or DEFAULT_RECIPE
    explicit = None
    if "@" in spec and not Path(spec).exists():
        spec, explicit = spec.rsplit("@", 1)
    path = resolve_recipe_path(spec)
    recipe = load_yaml_model(path, Recipe, RecipeError)
    profile = explicit or os.environ.get(PROFILE_ENV) or None
    if profile and profile not in recipe.profiles:
        if explicit:
            known = ", ".join(sorted(recipe.profiles)) or "none"
            raise RecipeError(f"recipe {recipe.name} has no profile {profile!r} (profiles: {known})")
        profile = None
    return LoadedRecipe(recipe, path.parent, profile)
