"""bench/tune/replay_tuner.py: the tuner's bucket policies replayed on sweep data. Standard library only."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("replay_tuner", ROOT / "bench" / "tune" / "replay_tuner.py")
replay = importlib.util.module_from_spec(_spec)
sys.modules["replay_tuner"] = replay
_spec.loader.exec_module(replay)


def test_buckets_match_the_library_policy():
    assert replay.m_bucket(1) == (0, 1) and replay.m_bucket(8) == (7, 8)
    assert replay.m_bucket(17) == (16, 18)
    assert replay.m_bucket(2049) == (2048, 2304) and replay.m_bucket(2304) == (2048, 2304)
    assert replay.m_bucket(4608) == (4096, 4608)


def sweep_with_a_config_that_is_fast_only_at_the_top():
    # Bucket (2048, 2304]: "aligned" wins at 2304 but is slow inside the bucket; "flat" is steady;
    # the next bucket's point (2368) is where a top-only pick shows its cliff.
    ms = [2049, 2112, 2176, 2240, 2304, 2368]
    aligned = [43.0, 47.0, 44.5, 42.0, 39.6, 48.0]
    flat = [40.0, 40.5, 41.3, 42.0, 42.3, 42.5]
    return replay.fit.SweepData(3072, 3072, ms, [{"aligned": a, "flat": f} for a, f in zip(aligned, flat)])


def test_top_only_keeps_the_configuration_that_is_fast_at_the_edge_and_gets_a_cliff():
    s = sweep_with_a_config_that_is_fast_only_at_the_top()
    assert replay.policy_picks(s, "top")[(2048, 2304)] == "aligned"
    cliff = replay.replay(s, "top")["cliff"]
    assert cliff[0] > 1.1 and cliff[1] == 2112


def test_three_points_keep_the_steady_configuration_and_no_cliff():
    s = sweep_with_a_config_that_is_fast_only_at_the_top()
    assert replay.policy_picks(s, "three-point")[(2048, 2304)] == "flat"
    r = replay.replay(s, "three-point")
    assert r["cliff"][0] < 1.02 and r["regret"] >= 1.0


def test_the_committed_h200_sweep_replays(capsys):
    assert replay.main([str(ROOT / "bench" / "results" / "h200" / "tune_all_configs.json")]) == 0
    out = capsys.readouterr().out
    assert out.count("three-point") == 2 and out.count("top ") == 2


def test_a_sweep_without_every_configuration_is_refused_with_a_message(tmp_path, capsys):
    f = tmp_path / "tune.json"
    f.write_text('{"m_sweeps": [{"n": 3072, "k": 3072, "points": [{"m": 1}]}]}')
    assert replay.main([str(f)]) == 2
    assert "--all-configs" in capsys.readouterr().err
