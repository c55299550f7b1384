"""Persisted records of jobs and trials (pydantic; every file has a schema_version)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# workload_broken: the workload ran in the baseline VM but failed in the tuned one after
# the agent's changes (the agent's failure, counted in its score); harness_error: an
# exception of the harness itself (a bug; traceback.txt in the trial folder), re-run on resume
FailureKind = Literal["none", "agent_error", "budget_exceeded", "sandbox_crash", "infra_error",
                      "workload_broken", "harness_error"]
# failures that are the agent's own doing: they count as failed attempts in its score
AGENT_FAILURES = ("agent_error", "workload_broken")


def default_backend(agent: str) -> str:
    """The model API family behind an agent: anthropic, openai, cli (a coding-agent CLI),
    mcp (an external MCP client) or none (no model: tuners, baselines)."""
    if agent.startswith("cli:"):
        return "cli"
    return {"claude": "anthropic", "openai": "openai", "external": "mcp"}.get(agent, "none")


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = 40  # LLM calls (or tuner candidates)
    input_tokens: int = 2_000_000
    output_tokens: int = 200_000
    wall_s: float = 1800.0
    cost_usd: float = 5.0
    # J of the agent phase, CPU (host RAPL) plus GPU (NVML) energy; None: no energy budget
    energy_j: float | None = None


class _TrialKey(BaseModel):
    """What identifies a trial; shared by its config and its result."""

    schema_version: int = 1
    trial_id: str
    workload: str
    agent: str
    model: str | None = None
    attempt: int = 0
    interface: Literal["bash", "mcp"] = "bash"
    backend: str | None = None  # anthropic | openai | cli | mcp | none; filled from the agent when absent

    @model_validator(mode="after")
    def _fill_backend(self):
        if self.backend is None:  # results written before the field existed
            self.backend = default_backend(self.agent)
        return self


class TrialConfig(_TrialKey):
    model_config = ConfigDict(extra="forbid")

    job_id: str = ""  # the job it belongs to: named in its VMs' libvirt metadata

    size: Literal["smoke", "full"] = "smoke"
    repeat: int | None = None  # measured rounds; None: the workload spec's repetitions for the size
    warmup: int | None = None  # unmeasured runs per measured run; None: the spec's warmup_runs
    slo_hint: bool = True
    budget: Budget = Field(default_factory=Budget)
    atif: bool = False  # also write trajectory.atif.json (harness/atif.py) when the trial ends


class Usage(BaseModel):
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None: unknown (the model has no price in prices.yaml)
    wall_s: float = 0.0
    guest_cpu_s: float | None = None
    host_cpu_s: float | None = None  # CPU time of the agent's thread on the host (tuners' own compute)
    # energy of the agent phase, each figure with its source (harness/energy.py); None with a note
    # saying why there is no figure, never 0
    energy_j: float | None = None  # CPU: the host's RAPL package counters (the whole host)
    energy_source: str = ""  # rapl_package
    energy_note: str = ""
    gpu_energy_j: float | None = None  # GPU: NVML's total-energy counter of the trial's GPUs
    gpu_energy_source: str = ""  # nvml_total_energy_counter
    gpu_energy_note: str = ""


class MetricStats(BaseModel):
    baseline: dict[str, float]
    tuned: dict[str, float]


class TrialResult(_TrialKey):
    status: Literal["done", "failed", "skipped"] = "done"  # skipped: cannot run here (failure says why)
    failure_kind: FailureKind = "none"
    failure: str = ""
    limit_hit: str | None = None
    phases_s: dict[str, float] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    kernel_release: str = ""
    image: str = ""
    primary_metric: str = ""
    direction: str = ""
    baseline_runs: list[dict[str, float]] = Field(default_factory=list)
    tuned_runs: list[dict[str, float]] = Field(default_factory=list)
    summary: dict[str, MetricStats] = Field(default_factory=dict)
    improvement: dict = Field(default_factory=dict)  # ratio (>1 better), ci95, p_value, n, method
    # harness/scoring.py: improved | regressed | no_change | inconclusive ("" when not measured)
    verdict: str = ""
    verdict_detail: dict = Field(default_factory=dict)  # noise floor, indicative, the rule that decided
    slo: dict = Field(default_factory=dict)  # verdict (met | not_met | inconclusive), baseline_met, the SLO
    # the measurement design (harness/trial.py): round order ("BT"/"TB"), its seed, and per
    # measured or warm-up run: round, role, the saved state and VM instance it ran in
    order: list[str] = Field(default_factory=list)
    order_seed: int | None = None
    measurements: list[dict] = Field(default_factory=list)
    scheduler_in_place: bool | None = None
    scheduler_exit: str = ""  # when not in place: the kernel's sched_ext lines saying why
    tuned_config: dict = Field(default_factory=dict)  # what the agent left in place (scheduler, sysctls)
    files_written: list[str] = Field(default_factory=list)
    slo_hint: bool = True
    # goal inference (--no-slo-hint): declared metric/direction, the step it came at, and
    # whether it matches the workload's ground truth (harness/goal.py); None with a hint
    goal: dict | None = None
    tool_calls: int = 0
    # host cores the trial's VMs were pinned to (None: not pinned, shared with other trials)
    host_cores: list[int] | None = None
    # tool calls the harness could not run as asked: arguments that are not a JSON object,
    # a tool that was not offered (each is answered with an error and logged)
    malformed_tool_calls: int = 0
    # GPU telemetry of the measured runs (harness/gpu.py): {"note": why there is none}, or
    # where it was sampled and per side the summary of each run's figures (energy_j with its source)
    gpu: dict = Field(default_factory=dict)


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    job_id: str
    workloads: list[str]
    agent: str
    model: str | None = None
    interface: Literal["bash", "mcp"] = "bash"
    backend: str | None = None  # filled from the agent when absent
    base_url: str | None = None  # the model API's URL (a local or compatible server); never a key
    attempts: int = 1
    parallel: int = 1
    size: Literal["smoke", "full"] = "smoke"
    repeat: int | None = None  # None: each workload spec's repetitions for the size
    slo_hint: bool = True
    budget: Budget = Field(default_factory=Budget)
    atif: bool = False  # each trial also writes trajectory.atif.json (schedcp run --atif)

    @model_validator(mode="after")
    def _fill_backend(self):
        if self.backend is None:
            self.backend = default_backend(self.agent)
        return self
