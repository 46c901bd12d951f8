"""bench/tune/fit_heuristic.py: it reads heuristic.cu's real table, and judges and refits on data. Standard library only."""
import importlib.util
import math
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fit_heuristic", ROOT / "bench" / "tune" / "fit_heuristic.py")
fit = importlib.util.module_from_spec(_spec)
sys.modules["fit_heuristic"] = fit  # dataclasses look their module up there
_spec.loader.exec_module(fit)

SMS = 132


def tree_model():
    return fit.parse_heuristic((ROOT / "src" / "gemm" / "sm90" / "heuristic.cu").read_text())


def test_the_parse_reads_every_bucket_and_only_built_configurations():
    model = tree_model()
    built = set(re.findall(r"INT8DIT_SM90_KERNEL\((\w+)\)", (ROOT / "src/gemm/sm90/kernel_list.inc").read_text()))
    assert len(model.buckets) >= 3
    assert [b[0] for b in model.buckets] == sorted(b[0] for b in model.buckets)
    assert model.buckets[-1][0] == 2**63 - 1  # the last bucket takes every M
    for _, names in model.buckets:
        assert names, "an empty bucket"
        for var in names:
            assert model.candidates[var].name in built
    assert 0 < model.stream_k_margin < 1


def test_a_changed_table_format_is_an_error_not_an_empty_model():
    with pytest.raises(ValueError, match="table format changed"):
        fit.parse_heuristic("constexpr double kStreamKMargin = 0.05;")


def test_max_cliff_compares_each_m_with_the_fastest_larger_m():
    # M = 2 takes 12 us where M = 4 takes 10: cliff 1.2; M = 3 at 11 us is 1.1.
    assert fit.max_cliff([1, 2, 3, 4], [9.0, 12.0, 11.0, 10.0]) == (1.2, 2, 4)
    assert fit.max_cliff([1, 2], [1.0, 2.0])[0] == 0.5  # time growing with M is no cliff (< 1)


def synthetic_sweeps(true_model, ms=None):
    """Every configuration's 'measured' time is the true model's estimate (in arbitrary us)."""
    ms = ms or [1, 64, 128, 256, 384, 512, 640, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192]
    sweeps = []
    for n, k in ((3072, 3072), (12288, 3072)):
        # A kernel the table lists under several constants has one true time: its first constant's.
        first = {}
        for c in true_model.candidates.values():
            first.setdefault(c.name, c)
        times = [{name: fit.estimated_time(c, m, n, k, SMS) for name, c in first.items()} for m in ms]
        sweeps.append(fit.SweepData(n, k, list(ms), times))
    return sweeps


def one_bucket(model):
    """Every candidate in one bucket and no stream-K margin: the pick is the modelled minimum over all."""
    first = {}  # a kernel listed under several constants (one per M regime) keeps its first
    for v, c in model.candidates.items():
        first.setdefault(c.name, v)
    return replace(model, buckets=[(2**63 - 1, list(first.values()))], stream_k_margin=0.0)


def test_a_model_judged_on_its_own_times_has_no_regret():
    model = one_bucket(tree_model())
    for j in fit.judge(model, synthetic_sweeps(model), SMS):
        assert j.regret == pytest.approx(1.0)


def test_refit_recovers_from_a_wrong_efficiency():
    truth = one_bucket(tree_model())
    cands = dict(truth.candidates)
    cands["kSmallN256"] = replace(cands["kSmallN256"], efficiency=cands["kSmallN256"].efficiency * 3.0)
    wrong = replace(truth, candidates=cands)
    sweeps = synthetic_sweeps(truth)
    before = fit.judge(wrong, sweeps, SMS)
    assert max(j.regret for j in before) > 1.01, "the perturbation should cost something"
    fitted = fit.refit(wrong, sweeps, SMS)
    after = fit.judge(fitted, sweeps, SMS)
    assert fit.objective(after) < fit.objective(before)
    assert math.prod(j.regret for j in after) < math.prod(j.regret for j in before)
    assert max(j.regret for j in after) < 1.01


def test_a_report_without_per_configuration_times_says_how_to_get_them():
    report = {"m_sweeps": [{"n": 3072, "k": 3072, "points": [{"m": 1, "heuristic": {}, "tuned": {}}]}]}
    with pytest.raises(ValueError, match="--all-configs"):
        fit.load_sweeps(report)


def test_the_cli_judges_a_report(tmp_path, capsys):
    import json

    model = tree_model()
    sweeps = synthetic_sweeps(model, ms=[64, 512, 4096])
    report = {
        "gpu": {"name": "synthetic", "sm_count": SMS},
        "m_sweeps": [
            {"n": s.n, "k": s.k, "points": [{"m": m, "configs": t} for m, t in zip(s.ms, s.times)]} for s in sweeps
        ],
    }
    path = tmp_path / "tune.json"
    path.write_text(json.dumps(report))
    assert fit.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "N = 3072, K = 3072: cliff" in out and "N = 12288, K = 3072: cliff" in out


def test_refit_lets_an_undervalued_candidate_join_the_bucket_where_it_wins():
    # The truth: 64x256 ping-pong is far better than the table believes, also at large M, where the
    # table does not offer it. Neither a higher efficiency nor the bucket alone fixes that.
    tree = tree_model()
    # The table may carry the 64x256 kernel under several constants (one per M regime): here it is
    # kSmallN256 alone, offered in every bucket but the last.
    n256 = {v for v, c in tree.candidates.items() if c.name == tree.candidates["kSmallN256"].name}
    buckets = [(m, list(dict.fromkeys("kSmallN256" if v in n256 else v for v in names))) for m, names in tree.buckets]
    last_max, last_names = buckets[-1]
    start = replace(tree, buckets=buckets[:-1] + [(last_max, [v for v in last_names if v != "kSmallN256"])])
    truth = replace(tree, candidates={v: replace(c, efficiency=1.2) if v in n256 else c for v, c in tree.candidates.items()})
    sweeps = synthetic_sweeps(truth)
    assert min(j.regret for j in fit.judge(start, sweeps, SMS)) > 1.1
    fitted = fit.refit(start, sweeps, SMS)
    assert "kSmallN256" in fitted.buckets[-1][1]
    assert max(j.regret for j in fit.judge(fitted, sweeps, SMS)) < 1.01
    assert "every larger M: add kSmallN256" in fit.constants_diff(start, fitted)


def test_the_tree_model_picks_the_measured_fastest_small_m_kernels():
    """The picks the small-M constants were fitted to, from the H200 runs' config_trials
    (bench/results/h200/gemm*.json): 128x144 ping-pong fastest at 512 x 9216 x 3072 in both runs that
    timed it (28.1 and 26.9 us against 64x128's 30.2-30.6); 64x128 ping-pong at 333 x 1536 x 6144
    (14.4-14.9 us against stream-K's 21.5-21.8 and 64x80's 16.4); 64x256 ahead of 64x128 and 64x192 at
    512 x 12288 x 3072 (35.1-36.1 vs 36.5-38.4 us); 64x192 fastest at 512 x 3072 x 3072 (14.0 against
    15.1) and 512 x 3072 x 12288 (33.6 against 36.4); 64x48 at 300 x 1152 x 1152 (7.8 against 8.6)."""
    model = tree_model()
    assert fit.pick(model, 512, 9216, 3072, SMS) == "sm90_bf16_128x144x128_2x1_pingpong"
    assert fit.pick(model, 333, 1536, 6144, SMS) == "sm90_bf16_64x128x128_1x1_pingpong"
    assert fit.pick(model, 512, 12288, 3072, SMS) == "sm90_bf16_64x256x128_1x1_pingpong"
    assert fit.pick(model, 512, 3072, 3072, SMS) == "sm90_bf16_64x192x128_1x1_pingpong"
    assert fit.pick(model, 512, 3072, 12288, SMS) == "sm90_bf16_64x192x128_1x1_pingpong"
    assert fit.pick(model, 300, 1152, 1152, SMS) == "sm90_bf16_64x48x128_1x1_pingpong"


def test_presets_are_read_per_distinct_shape_and_judged_against_their_best_trial():
    model = tree_model()
    m, n, k = 4096, 3072, 3072
    picked = fit.pick(model, m, n, k, SMS)
    other = "sm90_bf16_some_other_config"
    trial = lambda name, ms, status="ok": {"config": name, "status": status, "ms": ms}  # noqa: E731
    report = {"rows": [
        # The heuristic's pick at 2 ms, another configuration at 1 ms: a regret of 2.
        {"m": m, "n": n, "k": k, "config_trials": [trial(picked, 0.002), trial(other, 0.001)]},
        # The same shape again (another layer name): not counted twice.
        {"m": m, "n": n, "k": k, "config_trials": [trial(picked, 0.004), trial(other, 0.001)]},
        # A failed trial and a non-bf16 configuration are not candidates.
        {"m": 8192, "n": n, "k": k, "config_trials": [trial(fit.pick(model, 8192, n, k, SMS), 0.003),
                                                      trial(other, 0.0001, "error"),
                                                      trial("sm90_f32_128x128", 0.0001)]},
        {"m": 1, "n": 1, "k": 16},  # no trials: skipped
    ]}
    presets = fit.load_presets(report, "r.json")
    assert presets.shapes == [(m, n, k), (8192, n, k)]
    assert set(presets.times[1]) == {fit.pick(model, 8192, n, k, SMS)}
    (j,) = fit.judge_presets(model, [presets], SMS)
    assert j.regret == pytest.approx(math.sqrt(2.0))  # geomean of 2 and 1
    assert j.worst[0][1:] == ((m, n, k), picked, other)


def test_a_report_without_config_trials_is_refused_with_what_to_run():
    with pytest.raises(ValueError, match="config_trials"):
        fit.load_presets({"rows": [{"m": 1, "n": 1, "k": 16}]}, "r.json")
