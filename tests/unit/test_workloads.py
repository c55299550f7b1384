import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness.workload import WORKLOADS_DIR, WorkloadError, refusal, list_workloads, load_workload, parse_metrics

ALL = [w.name for w in list_workloads()]


def test_suite_specs_validate_and_cover_categories():
    wls = list_workloads()
    assert len(wls) >= 10
    cats = {w.spec.category for w in wls}
    assert {"cpu", "latency", "server", "data"} <= cats
    for w in wls:
        assert w.spec.primary.metric in {m.name for m in w.spec.metrics}
        assert w.spec.goal.metric and w.spec.goal.direction
        assert w.spec.noise, f"{w.name}: say how noisy it is"


# Real outputs of the programs (captured from the guest image's versions).
SAMPLES = {
    "hackbench": ("Running in process mode with 4 groups using 40 file descriptors each (== 160 tasks)\n"
                  "Each sender will pass 400 messages of 100 bytes\nTime: 3.890\n", {"wall_s": 3.89}),
    "context-switch": ("# Running 'sched/pipe' benchmark:\n# Executed 50000 pipe operations between two processes\n\n"
                       "     Total time: 5.175 [sec]\n\n     103.503880 usecs/op\n           9661 ops/sec\n",
                       {"latency_us_per_op": 103.50388, "ops_per_s": 9661}),
    "redis": ('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"\n'
              '"SET","16528.93","1.156","0.168","1.047","1.847","2.871","7.855"\n'
              '"GET","16977.93","1.121","0.160","1.015","1.791","2.911","9.103"\n',
              {"get_rps": 16977.93, "set_rps": 16528.93, "get_p99_ms": 2.911}),
    "nginx": ("Running 5s test @ http://127.0.0.1:8080/\n  2 threads and 20 connections\n  Latency Distribution\n"
              "     50%   10.00ms\n     90%   14.00ms\n     99%  950.00us\n  9630 requests in 5.00s, 7.80MB read\n"
              "Requests/sec:   1926.00\nTransfer/sec:      1.56MB\n",
              {"requests_per_s": 1926.0, "p99_latency_ms": 0.95}),
    "wakeup-latency": ("p50_latency_us=120\np99_latency_us=1521\nsamples=10000\n",
                       {"p99_latency_us": 1521, "p50_latency_us": 120}),
    "rocksdb": ("fillrandom   :     126.036 micros/op 15838 ops/sec 7.576 seconds 120000 operations;    1.8 MB/s\n"
                "readrandom   :      24.833 micros/op 79153 ops/sec 3.790 seconds 300000 operations;    7.6 MB/s "
                "(129570 of 150000 found)\n", {"read_ops_s": 79153, "fill_ops_s": 15838}),
    "sqlite": ("200000|1234\nschedcp_wall_s=3.700123\n", {"wall_s": 3.700123}),
    # The workloads below: the lines their launch scripts print (and pgbench 17's summary
    # lines), written from the scripts' formats with illustrative values, not captured.
    "postgres": ("transaction type: <builtin: select only>\nscaling factor: 2\nnumber of clients: 8\n"
                 "latency average = 6.412 ms\ninitial connection time = 45.120 ms\n"
                 "tps = 1247.635021 (without initial connection time)\ntransactions_logged=6238\n"
                 "p50_latency_us=5120\np99_latency_us=21874\n",
                 {"tps": 1247.635021, "avg_latency_ms": 6.412, "p99_latency_us": 21874, "p50_latency_us": 5120}),
    "kernel-build": ("built with make -j2 (smoke)\nschedcp_wall_s=41.250000\n", {"wall_s": 41.25}),
    "llvm-build": ("[4/4] Building CXX object lib/Support/CMakeFiles/LLVMSupport.dir/APInt.cpp.o\n"
                   "built with ninja -j2 (smoke)\nschedcp_wall_s=52.5\n", {"wall_s": 52.5}),
    "clickhouse": ("query 1: 0.416 s, 10 rows\nload_s=2.1137\nquery_s=4.1096\n", {"query_s": 4.1096, "load_s": 2.1137}),
    "pytorch": ("device=cpu threads=2 torch=2.6.0\nfinal_loss=2.2931\ntrain_s=17.8\nsteps_per_s=8.4270\n"
                "samples_per_s=539.33\n", {"steps_per_s": 8.427, "samples_per_s": 539.33}),
    "faiss": ("device=cpu threads=2 faiss=1.11.0\nflat_search_s=7.6\nflat_qps=39.40\nivf_build_s=3.2\n"
              "ivf_qps=812.50\nivf_recall_at_10=0.612\n", {"flat_qps": 39.4, "ivf_qps": 812.5, "ivf_build_s": 3.2}),
    "llama-cpp": ("device=cpu threads=2 llama_cpp_python=0.3.36\ntext='A scheduler'\nprompt_tokens=27 gen_tokens=16\n"
                  "prompt_tokens_per_s=11.250\ngen_tokens_per_s=3.125\n",
                  {"gen_tokens_per_s": 3.125, "prompt_tokens_per_s": 11.25}),
    "vllm": ("output_tokens=1024 seconds=2.0\noutput_tokens_per_s=512.00\nrequests_per_s=8.000\n",
             {"output_tokens_per_s": 512.0, "requests_per_s": 8.0}),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_parsers_on_real_output(name):
    out, want = SAMPLES[name]
    got = parse_metrics(load_workload(name).spec, out)
    assert got == pytest.approx(want)


@pytest.mark.fault
def test_unparseable_output_is_reported_clearly():
    with pytest.raises(WorkloadError, match=r"hackbench: metric wall_s not found .*output ends: starting \| segfault"):
        parse_metrics(load_workload("hackbench").spec, "starting\nsegfault\n")


def _copy(tmp_path, name="hackbench") -> Path:
    dst = tmp_path / name
    shutil.copytree(WORKLOADS_DIR / name, dst)
    return dst


def _edit(folder, fn):
    p = folder / "workload.yaml"
    d = yaml.safe_load(p.read_text())
    fn(d)
    p.write_text(yaml.safe_dump(d, sort_keys=False))


@pytest.mark.fault
def test_missing_field_names_file_and_field(tmp_path):
    f = _copy(tmp_path)
    _edit(f, lambda d: d.pop("primary"))
    with pytest.raises(WorkloadError, match=r"hackbench/workload.yaml: field primary: Field required"):
        load_workload(f)


def test_wrong_category_and_bad_regex(tmp_path):
    f = _copy(tmp_path)
    _edit(f, lambda d: d.update(category="gpuu"))
    with pytest.raises(WorkloadError, match=r"field category: Input should be 'cpu', 'latency'"):
        load_workload(f)
    _edit(f, lambda d: d.update(category="latency", metrics=[{"name": "wall_s", "unit": "s", "regex": "Time: [0-9.]+"}]))
    with pytest.raises(WorkloadError, match="needs a capture group"):
        load_workload(f)


def test_primary_must_be_a_metric(tmp_path):
    f = _copy(tmp_path)
    _edit(f, lambda d: d.update(primary={"metric": "p99", "direction": "lower"}))
    with pytest.raises(WorkloadError, match="primary.metric 'p99' is not one of the metrics"):
        load_workload(f)


def test_slo_needs_a_threshold(tmp_path):
    f = _copy(tmp_path)
    _edit(f, lambda d: d.update(slo={}))
    with pytest.raises(WorkloadError, match="an SLO needs"):
        load_workload(f)


def test_gpu_requirement_levels_and_legacy_booleans(tmp_path):
    f = _copy(tmp_path)
    for given, want in ((True, "required"), (False, "none"), ("optional", "optional"), ("required", "required")):
        _edit(f, lambda d: d.update(requirements={"gpu": given, "min_vcpus": 1, "memory_mib": 512}))
        assert load_workload(f).spec.requirements.gpu == want
    _edit(f, lambda d: d.update(requirements={"gpu": "sometimes"}))
    with pytest.raises(WorkloadError, match="field requirements.gpu"):
        load_workload(f)


def test_gpu_required_workloads_are_refused_with_the_reason_optional_ones_run():
    by_need = {w.name: w.spec.requirements.gpu for w in list_workloads()}
    assert by_need["vllm"] == "required"
    assert {by_need[n] for n in ("llama-cpp", "pytorch", "faiss")} == {"optional"}
    why = refusal(load_workload("vllm").spec, gpus=0)
    assert why and "requires a GPU" in why and "vllm" in why
    assert refusal(load_workload("vllm").spec, gpus=1) is None
    for name in ("llama-cpp", "pytorch", "faiss", "hackbench"):
        assert refusal(load_workload(name).spec, gpus=0) is None


def test_workload_needing_an_image_feature_is_refused_on_an_image_without_it():
    spec = load_workload("llama-cpp").spec
    assert spec.requirements.image_features == ["llama-cpp"]
    why = refusal(spec, gpus=0, image_features=[])
    assert why and "needs the image feature llama-cpp" in why and "leaves out" in why
    assert refusal(spec, gpus=0, image_features=["llama-cpp"]) is None
    assert refusal(load_workload("hackbench").spec, gpus=0, image_features=[]) is None


def test_cli_run_of_a_gpu_workload_without_gpu_is_a_skip_before_any_vm(capsys, monkeypatch):
    from harness import cli

    monkeypatch.setattr(cli, "_backend", lambda a: pytest.fail("no VM may start for a refused workload"))
    assert cli.main(["workloads", "run", "vllm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "skipped" and "requires a GPU" in out["reason"]


class _RefusingBackend:
    """No GPU, and an image built with the `lite` profile (no llama-cpp feature): the
    trial must be refused before any sandbox is opened."""

    image = type("I", (), {"key": "img-lite", "lock": type("L", (), {"features": [], "profile": "lite"})()})()
    shape = type("S", (), {"gpus": (), "vcpus": 2, "memory_mib": 4096})()

    def open(self, **kw):
        pytest.fail("no VM may start for a refused workload")


@pytest.mark.parametrize("workload,why", [("vllm", "requires a GPU"),
                                          ("llama-cpp", "needs the image feature llama-cpp")])
def test_trial_the_sandbox_cannot_run_is_skipped_with_the_reason(tmp_path, workload, why):
    from harness.models import TrialConfig
    from harness.trial import run_trial

    res = run_trial(TrialConfig(trial_id="t", workload=workload, agent="linux-default"), tmp_path, _RefusingBackend())
    assert res.status == "skipped" and res.failure_kind == "none" and why in res.failure
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "skipped"
