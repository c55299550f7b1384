"""Workload specs: ``workloads/<name>/workload.yaml`` plus the folder's assets.

A workload folder is plain files. Inside the guest it is uploaded, as is, to
``/opt/schedcp/workloads/<name>/`` (the fixed path an agent is told about): the spec,
the operator-facing ``README.md``, config files, launch scripts and input generators.
Commands run with that folder as the working directory.

Validated with pydantic (``extra="forbid"``): a bad spec fails with the file, the field
and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from images.yamlspec import load_yaml_model

WORKLOADS_DIR = Path(__file__).resolve().parents[1] / "workloads"
LIB_DIR = WORKLOADS_DIR / "_lib"  # helpers shared by workloads (input generators)
GUEST_ROOT = "/opt/schedcp/workloads"
Size = Literal["smoke", "full"]


class WorkloadError(Exception):
    """A workload that is missing, invalid, or whose output cannot be parsed."""


class WorkloadSkipped(WorkloadError):
    """A workload that cannot run in this sandbox (e.g. it requires a GPU); says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Program(_Strict):
    name: str
    package: str = Field(description="where it comes from: a Debian package or PyPI project")
    version: str
    substitutes: str = Field("", description="what it stands in for, when the paper's program is not packaged")


class PerSize(_Strict):
    smoke: str
    full: str


class PerSizeNum(_Strict):
    smoke: float
    full: float


class Metric(_Strict):
    name: str
    unit: str
    regex: str = Field(description="applied to the run's stdout+stderr; group 1 is the value")
    scale: float = 1.0
    time_unit_group: int | None = Field(
        None, description="group holding a time unit (us/ms/s/m): the value is converted to `unit`"
    )

    @field_validator("name")
    @classmethod
    def _snake(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError("metric names are snake_case, e.g. p99_latency_us")
        return v

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            if re.compile(v).groups < 1:
                raise ValueError("the regex needs a capture group for the value")
        except re.error as e:
            raise ValueError(f"not a valid regex: {e}") from None
        return v


class Primary(_Strict):
    metric: str
    direction: Literal["lower", "higher"]


class Slo(_Strict):
    """Absolute threshold and/or one relative to the measured baseline.

    For a lower-is-better metric ``relative: 0.8`` means "at most 0.8x baseline"; for a
    higher-is-better one ``relative: 1.2`` means "at least 1.2x baseline".
    """

    absolute: float | None = None
    relative: float | None = None

    @model_validator(mode="after")
    def _one(self):
        if self.absolute is None and self.relative is None:
            raise ValueError("an SLO needs `absolute`, `relative`, or both")
        return self


class Goal(_Strict):
    """The ground-truth optimization goal, for scoring goal inference."""

    metric: str
    direction: Literal["lower", "higher"]
    synonyms: list[str] = Field(default_factory=list)


GpuNeed = Literal["none", "optional", "required"]


class Requirements(_Strict):
    """What the sandbox must offer. ``gpu``: ``none`` (CPU only), ``optional`` (a CPU run
    exists, e.g. the smoke size CI runs, and a GPU is used when the sandbox has one) or
    ``required`` (refused, with the reason, in a sandbox without one). Old specs' booleans
    still load: ``true`` is ``required``, ``false`` is ``none``."""

    gpu: GpuNeed = "none"
    # optional parts of the guest image (the recipe's ``features``) the workload's program
    # is in; on an image built without one (e.g. the lite profile) the workload is skipped
    image_features: list[str] = Field(default_factory=list)
    min_vcpus: int = 1
    memory_mib: int = 1024

    @field_validator("gpu", mode="before")
    @classmethod
    def _legacy_bool(cls, v):
        if isinstance(v, bool):
            return "required" if v else "none"
        return v

    @property
    def gpu_required(self) -> bool:
        return self.gpu == "required"


class WorkloadSpec(_Strict):
    schema_version: Literal[1] = 1
    name: str
    category: Literal["cpu", "latency", "server", "data", "gpu"]
    description: str
    program: Program
    setup: list[str] = Field(default_factory=list, description="run once per sandbox, before the first run")
    run: PerSize
    timeout_s: PerSizeNum
    repetitions: dict[Size, int] = Field(default_factory=lambda: {"smoke": 5, "full": 10})
    warmup_runs: int = 1
    metrics: list[Metric]
    primary: Primary
    slo: Slo
    goal: Goal
    requirements: Requirements = Requirements()
    noise: str = Field("", description="what remains of the run-to-run noise, measured")

    @model_validator(mode="after")
    def _consistent(self):
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names repeat: {names}")
        if self.primary.metric not in names:
            raise ValueError(f"primary.metric {self.primary.metric!r} is not one of the metrics {names}")
        if self.goal.metric not in names:
            raise ValueError(f"goal.metric {self.goal.metric!r} is not one of the metrics {names}")
        return self

    @property
    def primary_metric(self) -> Metric:
        return next(m for m in self.metrics if m.name == self.primary.metric)

    def guest_dir(self) -> str:
        return f"{GUEST_ROOT}/{self.name}"


class Workload:
    def __init__(self, spec: WorkloadSpec, folder: Path):
        self.spec, self.folder = spec, folder

    @property
    def name(self) -> str:
        return self.spec.name

    def files(self) -> list[Path]:
        return tree_files(self.folder)


def refusal(spec: "WorkloadSpec", gpus: int, image_features: list[str] | None = None,
            image: str = "this image") -> str | None:
    """Why ``spec`` cannot run in a sandbox with ``gpus`` passed-through GPUs on an image
    with ``image_features`` (None: not checked), or None when it can."""
    if spec.requirements.gpu_required and gpus < 1:
        return (f"{spec.name} requires a GPU (requirements.gpu: required; {spec.program.name} has no CPU "
                "size) and this sandbox has none passed through")
    if image_features is not None:
        missing = [f for f in spec.requirements.image_features if f not in image_features]
        if missing:
            return (f"{spec.name} needs the image feature {', '.join(missing)}, which {image} leaves out; "
                    "build and use the whole recipe (no SCHEDCP_IMAGE_PROFILE, no @profile)")
    return None


def backend_refusal(spec: "WorkloadSpec", backend) -> str | None:
    """:func:`refusal` for the sandboxes of ``backend`` (its GPUs and its image)."""
    lock = backend.image.lock
    label = f"image {backend.image.key} (profile {lock.profile})" if lock.profile else f"image {backend.image.key}"
    return refusal(spec, len(backend.shape.gpus), lock.features, label)


def tree_files(folder: Path) -> list[Path]:
    """The files of a workload folder as uploaded to the guest (no Python caches)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def load_workload(spec: str | Path) -> Workload:
    p = Path(spec)
    if p.is_file():
        path = p
    elif p.is_dir():
        path = p / "workload.yaml"
    else:
        path = WORKLOADS_DIR / str(spec) / "workload.yaml"
    if not path.is_file():
        known = ", ".join(w.name for w in list_workloads())
        raise WorkloadError(f"no workload {str(spec)!r}: known workloads: {known}")
    ws = load_yaml_model(path, WorkloadSpec, WorkloadError)
    if ws.name != path.parent.name:
        raise WorkloadError(f"{path}: field name: {ws.name!r} must match its folder name {path.parent.name!r}")
    return Workload(ws, path.parent)


def list_workloads() -> list[Workload]:
    return [load_workload(d) for d in sorted(WORKLOADS_DIR.iterdir()) if (d / "workload.yaml").is_file()]


_TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}


def parse_metrics(spec: WorkloadSpec, output: str) -> dict[str, float]:
    """Every metric of the spec from one run's output; a missing one is an error."""
    out: dict[str, float] = {}
    for m in spec.metrics:
        match = re.search(m.regex, output, re.MULTILINE)
        if not match:
            tail = " | ".join(output.strip().splitlines()[-3:])
            raise WorkloadError(f"{spec.name}: metric {m.name} not found (regex {m.regex!r}); output ends: {tail}")
        try:
            v = float(match.group(1)) * m.scale
        except ValueError:
            raise WorkloadError(f"{spec.name}: metric {m.name}: {match.group(1)!r} is not a number") from None
        if m.time_unit_group is not None:
            got = match.group(m.time_unit_group)
            if got not in _TIME_UNITS or m.unit not in _TIME_UNITS:
                raise WorkloadError(f"{spec.name}: metric {m.name}: cannot convert time unit {got!r} to {m.unit!r}")
            v = v * _TIME_UNITS[got] / _TIME_UNITS[m.unit]
        out[m.name] = v
    return out


_GOAL_SENTENCE = re.compile(r"figure of merit|primary metric|lower is better|higher is better", re.I)


def goal_free_description(text: str) -> str:
    """The description without the sentences that state the goal (for --no-slo-hint:
    the agent must infer it). By convention a spec states its figure of merit in a
    sentence of its own."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return " ".join(s for s in sentences if not _GOAL_SENTENCE.search(s))
