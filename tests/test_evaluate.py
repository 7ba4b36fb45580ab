"""The zero-shot evaluation CLI: files, tables, orbits, videos, safe loading, error paths.

Tiny runs are trained here (a few hundred steps): the numbers are meaningless, the plumbing is
what is tested.
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from equigym.evaluate import EvalConfig, evaluate_runs, main
from equigym.evaluation.conditions import item_condition, run_conditions, select_conditions
from equigym.evaluation.orbit import orbit_elements
from equigym.evaluation.report import COLUMNS
from equigym.evaluation.rollout import load_run
from equigym.train import main as train_main

TINY = [
    "--n-envs", "2", "--n-steps", "64", "--batch-size", "64", "--n-epochs", "1",
    "--hidden-dim", "16", "--eval-freq", "64", "--eval-envs", "1", "--eval-episodes", "0",
    "--checkpoint-freq", "128", "--no-progress-bar",
]  # fmt: skip


def _train(path: Path, env: str, policy: str, *extra: str) -> Path:
    train_main(["--env", env, "--policy", policy, "--total-timesteps", "128", *TINY,
                "--run-dir", str(path), *extra])  # fmt: skip
    return path


@pytest.fixture(scope="module")
def sliding_runs(tmp_path_factory) -> tuple[Path, Path]:
    """An equivariant (hepi) and a baseline (mlp) tiny run on Sliding."""
    root = tmp_path_factory.mktemp("sliding")
    return (_train(root / "hepi", "equigym/Sliding-v0", "hepi"),
            _train(root / "mlp", "equigym/Sliding-v0", "mlp"))  # fmt: skip


@pytest.fixture(scope="module")
def sliding_report(sliding_runs, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("report")
    cfg = EvalConfig(runs=sliding_runs, episodes=2, orbit=4, orbit_scenes=1, video=2, out=out)
    return evaluate_runs(cfg), out


@pytest.fixture(scope="module")
def walker_run(tmp_path_factory) -> Path:
    """Multi-morphology training on the walker family's training split."""
    root = tmp_path_factory.mktemp("walker")
    return _train(root / "set", "equigym/Walker3D-v0", "set", "--morphologies", "walker:train",
                  "--n-layers", "1", "--n-envs", "6")  # fmt: skip


def test_report_files_and_table(sliding_report):
    results, out = sliding_report
    for name in ("results.json", "results.csv", "results.md", "conditions.png",
                 "learning_curves.png", "orbit.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    got = {(r["agent"], r["mode"], r["condition"]) for r in rows}
    for cond in ("train", "held_out"):
        for agent in ("hepi", "mlp"):
            for mode in ("deterministic", "stochastic"):
                assert (agent, mode, cond) in got
        assert ("random", "-", cond) in got and ("scripted", "-", cond) in got
    by_key = {(r["agent"], r["mode"], r["condition"]): r for r in results["rows"]}
    held, train = by_key[("hepi", "deterministic", "held_out")], by_key[
        ("hepi", "deterministic", "train")]
    assert held["ratio_return"] == pytest.approx(held["mean_return"] / train["mean_return"])
    assert train["ratio_return"] is None
    assert by_key[("scripted", "-", "train")]["success_rate"] >= 0.5  # the controller works
    # Scores run from the random policy (0) to the scripted controller (1) on each condition.
    assert by_key[("random", "-", "held_out")]["score"] == 0.0
    assert by_key[("scripted", "-", "held_out")]["score"] == 1.0
    assert held["ratio_score"] == pytest.approx(held["score"] / train["score"])
    md = (out / "results.md").read_text()
    assert "| agent | mode | condition |" in md and "held-out ÷ train" in md
    assert json.loads((out / "results.json").read_text())["rows"] == json.loads(
        json.dumps(results["rows"]))


def test_orbit_output_and_equivariance(sliding_report):
    orbit = sliding_report[0]["orbit"]
    assert set(orbit) == {"hepi", "mlp"}
    for o in orbit.values():
        assert [e["angle_deg"] for e in o["elements"]] == [0.0, 90.0, 180.0, 270.0]
        assert all(len(e["returns"]) == 1 for e in o["elements"])
    # Exactly equivariant HEPi: flat up to float32; the MLP baseline is not.
    assert orbit["hepi"]["max_policy_error"] < 1e-4
    assert orbit["hepi"]["max_scene_error"] < 1e-3
    assert orbit["mlp"]["max_policy_error"] > 1e-3


def test_video_is_side_by_side(sliding_report):
    import imageio.v2 as imageio

    videos = [Path(v) for v in sliding_report[0]["videos"]]
    assert [v.name for v in videos] == ["train_ep0.mp4", "train_ep1.mp4", "held_out_ep0.mp4",
                                        "held_out_ep1.mp4"]  # fmt: skip
    frames = np.stack(imageio.mimread(videos[0], memtest=False))
    # Sliding episodes are 100 steps: the reset frame plus one per step; two runs side by side.
    assert frames.shape[0] == 101
    assert frames.shape[2] == 2 * frames.shape[1]


def test_lock_step_episodes_match_single_env_episodes():
    """EnvBatch's bookkeeping (seeds, morphologies, ended envs) against one env at a time."""
    import gymnasium as gym

    from equigym import policies
    from equigym.evaluation.rollout import EnvBatch, policy_actor

    cond = run_conditions("equigym/Walker3D-v0", ["walker_7_full", "walker_3_left_knee_right_knee"],
                          max_nodes=7)["train"]  # fmt: skip
    batch = EnvBatch("equigym/Walker3D-v0", cond, 3)
    torch.manual_seed(0)
    net = policies.make("gnn", batch.spec, hidden_dim=16).eval()
    act = policy_actor(net, batch.action_space, deterministic=True)
    episodes = batch.run(act, [5, 6, 7])
    batch.close()
    assert len({e.length for e in episodes}) > 1  # episodes of different lengths
    for i, ep in enumerate(episodes):
        env = gym.make("equigym/Walker3D-v0", **cond.episode_kwargs(i))
        obs, _ = env.reset(seed=5 + i)
        ret, length, done = 0.0, 0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act({k: v[None] for k, v in obs.items()})[0])
            ret, length, done = ret + r, length + 1, term or trunc
        assert (ep.ret, ep.length) == pytest.approx((ret, length), rel=1e-6)


def test_ratios_need_one_sign_and_a_positive_score():
    from equigym.evaluation.report import add_ratios

    def row(agent, cond, ret, kind="policy"):
        split = "train" if cond == "train" else "held_out"
        return {"agent": agent, "kind": kind, "mode": "-", "condition": cond, "split": split,
                "mean_return": ret}  # fmt: skip

    rows = [row("random", "train", -4.0, "random"), row("scripted", "train", 0.0, "scripted"),
            row("random", "held_out", -6.0, "random"), row("scripted", "held_out", -1.0,
                                                             "scripted"),
            row("a", "train", -5.0), row("a", "held_out", -3.5),
            row("b", "train", -1.0), row("b", "held_out", 2.0)]  # fmt: skip
    add_ratios(rows)
    a_train, a_held, b_held = rows[4], rows[5], rows[7]
    assert a_train["score"] == pytest.approx(-0.25) and a_held["score"] == pytest.approx(0.5)
    assert a_held["ratio_return"] == pytest.approx(0.7)
    assert a_held["ratio_score"] is None  # the train score is negative: no ratio
    assert b_held["ratio_return"] is None  # returns of different signs: no ratio


def test_results_are_reproducible(sliding_runs, tmp_path):
    cfg = EvalConfig(runs=sliding_runs[:1], episodes=2, conditions=("shape:A",),
                     baselines=False, out=tmp_path)  # fmt: skip
    a, b = evaluate_runs(cfg)["rows"], evaluate_runs(cfg)["rows"]
    assert a == b and a[0]["split"] == "held_out"


def test_locomotion_zero_shot_morphologies_and_xml(walker_run, tmp_path):
    from equigym.envs.locomotion import SPLITS, build_xml

    xml = tmp_path / "my_walker.xml"
    xml.write_text(build_xml("walker_6_right_foot"))
    res = evaluate_runs(EvalConfig(runs=(walker_run,), episodes=2, xml=(xml,), baselines=False,
                                   modes=("deterministic",), out=tmp_path / "ev"))  # fmt: skip
    conds = res["conditions"]
    assert conds["train"]["morphologies"] == SPLITS["walker"]["train"]
    assert conds["held_out"]["morphologies"] == SPLITS["walker"]["test"]
    assert conds["xml:my_walker.xml"]["split"] == "held_out"
    assert [r["condition"] for r in res["rows"]] == ["train", "held_out", "xml:my_walker.xml"]
    assert all(np.isfinite(r["mean_return"]) for r in res["rows"])
    with pytest.raises(ValueError, match="no tilts"):
        evaluate_runs(EvalConfig(runs=(walker_run,), episodes=1, conditions=("train",),
                                 orbit=2, orbit_tilts=(30.0,), baselines=False,
                                 out=tmp_path / "tilt"))  # fmt: skip


def test_safe_loader_matches_sb3_and_runs_no_pickled_code(sliding_runs, tmp_path):
    from stable_baselines3 import PPO

    import equigym  # noqa: F401

    run = load_run(sliding_runs[0])
    model = PPO.load(sliding_runs[0] / "final_model.zip", device="cpu")
    import gymnasium as gym

    obs, _ = gym.make("equigym/Sliding-v0").reset(seed=3)
    batch = {k: torch.as_tensor(v[None]) for k, v in obs.items()}
    with torch.no_grad():
        ours, sb3 = run.net(batch), model.policy.net(batch)
    for a, b in zip(ours, sb3, strict=True):
        torch.testing.assert_close(a, b)
    # A model file whose weights need unpickling is refused, and its code never runs.
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "bad"
    shutil.copytree(sliding_runs[0], bad)
    with zipfile.ZipFile(sliding_runs[0] / "final_model.zip") as src, zipfile.ZipFile(
        bad / "final_model.zip", "w"
    ) as dst:
        for name in src.namelist():
            if name == "policy.pth":
                path = tmp_path / "evil.pth"
                torch.save({"net.log_std": Evil()}, path)
                dst.writestr(name, path.read_bytes())
            else:
                dst.writestr(name, src.read(name))
    with pytest.raises(ValueError, match="refuses to execute"):
        load_run(bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing_dir", "No run folder"),
        ("corrupt_model", "not a readable model file"),
        ("no_model", "No model in"),
        ("bad_config", "not readable JSON"),
        ("other_env", "observation layout"),
        ("unknown_condition", "Unknown condition"),
        ("two_envs", "different envs"),
        ("zero_episodes", "--episodes must be >= 1"),
    ],
)
def test_error_paths_exit_with_a_message(sliding_runs, walker_run, tmp_path, damage, message):
    run = tmp_path / "run"
    shutil.copytree(sliding_runs[0], run, ignore=shutil.ignore_patterns("evaluation"))
    args = [str(run), "--episodes", "1", "--out", str(tmp_path / "out")]
    if damage == "missing_dir":
        args[0] = str(tmp_path / "nope")
    elif damage == "corrupt_model":
        (run / "final_model.zip").write_bytes(b"PK\x03\x04 truncated")
    elif damage == "no_model":
        (run / "final_model.zip").unlink()
        shutil.rmtree(run / "checkpoints")
    elif damage == "bad_config":
        (run / "config.json").write_text("{not json")
    elif damage == "other_env":  # a run folder whose config names another env
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "env": "equigym/Pushing-v0"}))
        # Pushing's graph differs from Sliding's (pusher, no yaw): its layout cannot match
    elif damage == "unknown_condition":
        args += ["--conditions", "shape:A", "bogus:x"]
    elif damage == "two_envs":
        args.insert(1, str(walker_run))
    elif damage == "zero_episodes":
        args[2] = "0"
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert message in str(exit_info.value.code), exit_info.value.code


def test_checkpoint_in_a_run_folder_can_be_evaluated(sliding_runs, tmp_path):
    ckpt = sorted((sliding_runs[0] / "checkpoints").glob("model_*_steps.zip"))[0]
    run = load_run(ckpt)
    assert run.path == sliding_runs[0] and run.model_file == ckpt and run.timesteps == 128


def test_conditions_of_every_family():
    from equigym.envs.manipulation.shapes import TEST_SHAPES

    rigid = run_conditions("equigym/Insertion-v0", None)
    assert rigid["held_out"].env_kwargs == {"shape": "test"} and set(TEST_SHAPES) >= {"A"}
    rope = run_conditions("equigym/RopeShaping-v0", None)
    assert rope["train"].env_kwargs == {"target": "W"}
    assert rope["held_out"].env_kwargs == {"target": ["U", "S", "arc"]}
    cloth = run_conditions("equigym/ClothHanging-v0", None)
    assert cloth["held_out"].env_kwargs == {"hole": "test"}
    assert set(run_conditions("equigym/RopeClosing-v0", None)) == {"train"}
    hopper = run_conditions("equigym/Hopper3D-v0", None, max_nodes=5)
    assert set(hopper) == {"train"}  # the hopper family has no held-out morphologies
    assert hopper["train"].episode_kwargs(0) == {"max_nodes": 5, "morphology": "hopper_5_full"}
    walker = run_conditions("equigym/Walker3D-v0", None)
    assert walker["held_out"].episode_kwargs(1)["morphology"] == "walker_6_right_foot"
    assert item_condition("equigym/ClothHanging-v0", "hole:25", cloth["train"]).split == \
        "held_out"
    assert item_condition("equigym/Sliding-v0", "shape:star", rigid["train"]).split == "train"
    sel = select_conditions("equigym/RopeShaping-v0", rope, ["target:S"])
    assert sel["target:S"].env_kwargs == {"target": "S"}
    for env_id, bad in [("equigym/Sliding-v0", "hole:3"), ("equigym/Sliding-v0", "shape:"),
                        ("equigym/ClothHanging-v0", "hole:99"),
                        ("equigym/Walker3D-v0", "morphology:walker_99")]:  # fmt: skip
        with pytest.raises(ValueError):
            select_conditions(env_id, run_conditions(env_id, None), [bad])
    with pytest.raises(FileNotFoundError):
        run_conditions("equigym/Walker3D-v0", None, xml=["/no/such/robot.xml"])
    with pytest.raises(ValueError, match="at least 2"):
        orbit_elements(1)


def test_orbit_with_tilts_on_a_fully_symmetric_task():
    import gymnasium as gym

    from equigym import policies
    from equigym.evaluation.orbit import run_orbit
    from equigym.evaluation.rollout import Run

    env_id = "equigym/InsertionTwoAgents-v0"
    with pytest.raises(ValueError, match="no tilts"):
        orbit_elements(4, (30.0,), "equigym/Insertion-v0")
    elements = orbit_elements(3, (90.0,), env_id)
    assert [(round(np.rad2deg(e.angle)), round(np.rad2deg(e.tilt))) for e in elements] == [
        (0, 0), (120, 0), (240, 0), (0, 90), (120, 90), (240, 90)]  # fmt: skip
    spec = gym.make(env_id).unwrapped.graph_spec
    torch.manual_seed(0)
    net = policies.make("hepi", spec, hidden_dim=16, vector_dim=4).eval()
    run = Run(Path("."), "hepi", {"env": env_id, "policy": "hepi"}, spec, Path("none"), None, net)
    res = run_orbit(run, run_conditions(env_id, None)["train"], elements, seeds=[7])
    assert len(res["elements"]) == 6
    # Gravity turns with the tilted scene (it is an input vector): still exactly equivariant.
    assert res["max_policy_error"] < 1e-4 and res["max_scene_error"] < 1e-3
