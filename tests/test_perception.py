"""Perception levels 0-2: sensor model, geometric fits, keypoint network, wrapper, CLI, train.py.

Accuracy thresholds are two to three times the errors measured on held-out shapes / seeds
(README, benchmarks/results/perception/): they catch a broken camera or fit, not noise.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import egl_available
from gymnasium.utils.env_checker import check_env

from equigym.envs.manipulation.scripted_deformable import play_episode, scripted_policy
from equigym.modules import module_wrapper
from equigym.modules.perception import (
    NoisyGroundTruth,
    PerceptionWrapper,
    make_perception,
)
from equigym.modules.perception.keypoints import KeypointNet, load_keypoint_net
from equigym.modules.perception.train import main as kp_main

needs_gl = pytest.mark.skipif(not egl_available(), reason="no off-screen OpenGL (MUJOCO_GL=egl)")


def _rollout(env: gym.Env, steps: int, seed: int, noise: float = 0.3):
    """The reset and ``steps`` scripted (noisy) steps; yields (obs, info) after each."""
    frames = play_episode(env, scripted_policy(env), seed, np.random.default_rng(seed), noise)
    for obs, info, _ in itertools.islice(frames, steps + 1):
        yield obs, info


# --- level 0 --------------------------------------------------------------------------------
def test_level0_without_noise_is_the_ground_truth():
    base = gym.make("equigym/Sliding-v0")
    env = PerceptionWrapper(gym.make("equigym/Sliding-v0"),
                            NoisyGroundTruth(0.0, 0.0, 0), velocity="true")
    o1, _ = base.reset(seed=3)
    o2, info = env.reset(seed=3)
    for k in o1:
        np.testing.assert_allclose(o2[k], o1[k], atol=1e-6, err_msg=k)
    assert info["perception_error"] == 0.0
    a = base.action_space.sample()
    o1, *_ = base.step(a)
    o2, *_ = env.step(a)
    for k in o1:
        np.testing.assert_allclose(o2[k], o1[k], atol=1e-6, err_msg=k)


def test_level0_latency_noise_and_dropout():
    env = PerceptionWrapper(gym.make("equigym/RopeClosing-v0"), NoisyGroundTruth(0.0, 0.0, 2))
    truth, seen = [], []
    for obs, _ in _rollout(env, 6, seed=0):
        truth.append(env.unwrapped._obs.views["rope/pos"].copy())  # the env's own (true) frame
        seen.append(obs["rope/pos"])
    for t in range(2, 7):
        np.testing.assert_allclose(seen[t], truth[t - 2], atol=1e-6)
    np.testing.assert_allclose(seen[1], truth[0], atol=1e-6)  # reset frame fills the delay

    env = PerceptionWrapper(gym.make("equigym/RopeShaping-v0"), NoisyGroundTruth(0.01, 0.0, 0))
    errs = [obs["rope/pos"] - env.unwrapped._obs.views["rope/pos"]
            for obs, _ in _rollout(env, 5, seed=1)]
    std = np.concatenate(errs).std()
    assert 0.008 < std < 0.012  # 80 nodes x 3 axes x 6 frames

    env = PerceptionWrapper(gym.make("equigym/RopeShaping-v0"), NoisyGroundTruth(0.01, 0.5, 0))
    frames = [obs["rope/pos"] for obs, _ in _rollout(env, 4, seed=2)]
    held = np.all(frames[-1] == frames[-2], axis=1).mean()
    assert 0.3 < held < 0.7  # about half the nodes kept their last estimate


def test_level0_perceived_features_follow_the_estimate():
    env = PerceptionWrapper(gym.make("equigym/RopeShaping-v0"), NoisyGroundTruth(0.02, 0.0, 0))
    prev = None
    for obs, _ in _rollout(env, 3, seed=0):
        true = env.unwrapped._obs.views
        err = obs["rope/pos"] - true["rope/pos"]
        # Shaping offsets are centred: the perceived ones are re-centred too.
        np.testing.assert_allclose(obs["rope/vec"][:, 0], true["rope/vec"][:, 0] + err
                                   - err.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(obs["rope/vec"][:, 0].mean(axis=0), 0.0, atol=1e-5)
        vel = np.zeros_like(err) if prev is None else (obs["rope/pos"] - prev) / env.unwrapped.dt
        np.testing.assert_allclose(obs["rope/vec"][:, 1], vel, rtol=1e-4, atol=1e-3)
        np.testing.assert_array_equal(obs["actuator/pos"], true["actuator/pos"])  # proprioception
        np.testing.assert_allclose(obs["actuator/vec"][:, 0], true["actuator/vec"][:, 0]
                                   - err.mean(axis=0), atol=1e-5)  # shares the centring
        prev = obs["rope/pos"]


def test_level0_rebuilds_rope_knn_edges_and_keeps_a_serialisable_spec():
    from equigym.envs.manipulation.rope_v0 import knn_sources

    env = PerceptionWrapper(gym.make("equigym/RopeClosing-v0", knn=3), 0,
                            settings={"noise": 0.05})
    for obs, _ in _rollout(env, 2, seed=0):
        np.testing.assert_array_equal(obs["rope-knn-rope/index"][0],
                                      knn_sources(obs["rope/pos"], 3))
    rebuilt = gym.make(gym.envs.registration.EnvSpec.from_json(env.spec.to_json()))
    assert isinstance(rebuilt, PerceptionWrapper) and rebuilt.perception.noise == 0.05


def test_level0_is_deterministic_per_seed():
    def run(seed):
        env = PerceptionWrapper(gym.make("equigym/Sliding-v0"), NoisyGroundTruth())
        return np.concatenate([o["object/pos"].ravel() for o, _ in _rollout(env, 5, seed)])

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


@pytest.mark.parametrize("env_id", ["equigym/Sliding-v0", "equigym/Hopper3D-v0"])
def test_level0_wrapper_passes_check_env(env_id):
    env = PerceptionWrapper(gym.make(env_id), NoisyGroundTruth())
    assert env.observation_space == env.unwrapped.observation_space
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"noise": -0.1}, "noise must be"),
        ({"noise": float("nan")}, "noise must be"),
        ({"dropout": 1.0}, "dropout must be"),
        ({"latency": -1}, "latency must be"),
        ({"latency": 1.5}, "latency must be"),
    ],
)
def test_level0_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NoisyGroundTruth(**kwargs)


def test_bad_levels_and_envs(tmp_path):
    with pytest.raises(ValueError, match="must be 0, 1 or 2"):
        make_perception(3)
    with pytest.raises(ValueError, match="needs a trained keypoint network"):
        make_perception(2)
    with pytest.raises(ValueError, match="takes no settings"):
        make_perception(1, noise=0.1)
    with pytest.raises(FileNotFoundError, match="no keypoint network"):
        make_perception(2, str(tmp_path / "none"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "keypoints.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a keypoint network"):
        make_perception(2, str(bad))
    with pytest.raises(ValueError, match="use level 0"):
        PerceptionWrapper(gym.make("equigym/Hopper3D-v0"), make_perception(1))
    with pytest.raises(ValueError, match="velocity must be"):
        PerceptionWrapper(gym.make("equigym/Sliding-v0"), make_perception(0), velocity="x")


# --- level 1 --------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["equigym/Sliding-v0", "equigym/InsertionTwoAgents-v0"])
def test_level1_rigid_accuracy_on_held_out_shapes(env_id):
    env = PerceptionWrapper(gym.make(env_id, shape="test"), make_perception(1))
    errs, rots = [], []
    for seed in (0, 1):
        for _, info in _rollout(env, 30, seed):
            errs.append(info["perception_error"])
            rots.append(info["perception_rotation_error"])
            assert info["perception_points"] > 20
    assert np.median(errs) < 0.01  # m (measured about 2-3 mm)
    assert np.degrees(np.median(rots)) < 8.0  # (measured about 1.5-3 degrees)


def test_level1_rigid_offsets_and_velocities_follow_the_estimate():
    env = PerceptionWrapper(gym.make("equigym/Sliding-v0", shape="test"), make_perception(1))
    for seed in (0, 2):  # seed 2 draws the rectangle (two symmetric copies)
        for obs, _ in _rollout(env, 40, seed):
            true = env.unwrapped._obs.views
            m = true["object/mask"] > 0
            est, pos = obs["object/pos"][m], true["object/pos"][m]
            # Match each perceived node to its true node (a symmetric copy reorders them): the
            # offset is off by the position error, not by a whole turn of the target.
            k = np.linalg.norm(est[:, None] - pos[None], axis=-1).argmin(axis=1)
            gap = np.linalg.norm(obs["object/vec"][m, 0] - true["object/vec"][m, 0][k], axis=1)
            err = np.linalg.norm(est - pos[k], axis=1)
            assert (gap <= err + 1e-4).all()
            # No jumps between symmetric copies: the yaw rate is limited to 3 rad/s.
            assert np.linalg.norm(obs["object/vec"][0, 2]) < 10.0


def test_level1_sees_the_object_at_the_goal():
    # The target's see-through ghost sits on the object at the goal; cameras look through it.
    env = PerceptionWrapper(gym.make("equigym/Sliding-v0"), make_perception(1))
    points = [info["perception_points"] for _, info in _rollout(env, 99, seed=0, noise=0.0)]
    assert info_success(env) and min(points[-10:]) > 0.6 * points[0]


def info_success(env: gym.Env) -> bool:
    dist, theta, _ = env.unwrapped._errors()
    return dist < 0.02 and theta < 0.1


def test_level1_rigid_wrapper_passes_check_env():
    check_env(PerceptionWrapper(gym.make("equigym/Pushing-v0"), make_perception(1)),
              skip_render_check=True)


@needs_gl
@pytest.mark.parametrize("env_id, limit", [("equigym/RopeClosing-v0", 0.06),
                                           ("equigym/ClothHanging-v0", 0.1)])
def test_level1_deformable_accuracy(env_id, limit):
    kwargs = {"hole": "test"} if "Cloth" in env_id else {}
    env = PerceptionWrapper(gym.make(env_id, **kwargs), make_perception(1))
    errs = [info["perception_error"] for _, info in _rollout(env, 40, seed=7)]
    assert np.median(errs) < limit  # m (measured 28 mm rope, 50 mm cloth)
    env.close()


@needs_gl
def test_level1_deformable_wrapper_passes_check_env():
    env = PerceptionWrapper(gym.make("equigym/RopeClosing-v0"), make_perception(1))
    check_env(env, skip_render_check=True)
    env.close()


# --- level 2 --------------------------------------------------------------------------------
def _random_net(seed: int = 0) -> KeypointNet:
    torch.manual_seed(seed)
    net = KeypointNet(scalars=2, hidden=16, layers=2, k=8)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)  # position updates start at zero
    return net.eval()


@pytest.mark.parametrize("reflect", [False, True])
def test_keypoint_net_is_e3_equivariant(reflect):
    net = _random_net()
    gen = torch.Generator().manual_seed(1)
    b, m, n = 3, 60, 9
    pts = 0.2 * torch.randn(b, m, 3, generator=gen)
    pmask = torch.ones(b, m)
    pmask[:, 50:] = 0
    guess = 0.2 * torch.randn(b, n, 3, generator=gen)
    scal = torch.randn(b, n, 2, generator=gen)
    adj = (torch.rand(b, n, n, generator=gen) > 0.6).float()
    nmask = torch.ones(b, n)
    nmask[:, 7:] = 0
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen))
    if (torch.det(q) < 0) != reflect:
        q[:, 0] *= -1
    t = torch.tensor([0.3, -0.2, 0.1])
    with torch.no_grad():
        y = net(pts, pmask, guess, scal, adj, nmask)
        y2 = net(pts @ q.T + t, pmask, guess @ q.T + t, scal, adj, nmask)
    assert (y - guess)[:, :7].abs().max() > 1e-2  # it does move the nodes
    torch.testing.assert_close(y2[:, :7], (y @ q.T + t)[:, :7], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y[:, 7:], guess[:, 7:])  # padding stays put
    # Padded points change nothing.
    pts2 = pts.clone()
    pts2[:, 50:] = 100.0
    with torch.no_grad():
        torch.testing.assert_close(net(pts2, pmask, guess, scal, adj, nmask), y)


def test_cli_trains_reloads_and_runs_as_level2(tmp_path):
    out = tmp_path / "kp"
    kp_main(["--env", "equigym/Sliding-v0", "--episodes", "1", "--val-episodes", "1",
             "--every", "10", "--epochs", "1", "--hidden", "16", "--layers", "1",
             "--out", str(out)])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_env_kwargs"] == {"shape": "test"}
    assert metrics["equivariance_error"]["relative"] < 1e-5
    assert {"node_error_mm", "pck_2cm", "rotation_error_deg"} <= set(metrics["level2"])
    net = load_keypoint_net(out)
    assert net.trained_on["env"] == "equigym/Sliding-v0"
    env = PerceptionWrapper(gym.make("equigym/Sliding-v0"), make_perception(2, str(out)))
    for _, info in _rollout(env, 3, 0):
        assert np.isfinite(info["perception_error"]) and info["perception_error"] < 0.1
    check_env(env, skip_render_check=True)


NETS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "perception" / "keypoints"


def _median_errors(env_id: str, kwargs: dict, net: Path, steps: int, seed: int):
    out = []
    for level in (1, 2):
        env = PerceptionWrapper(gym.make(env_id, **kwargs),
                                make_perception(level, str(net) if level == 2 else None))
        out.append(np.median([info["perception_error"] for _, info in _rollout(env, steps, seed)]))
        env.close()
    return out


def test_committed_rigid_network_matches_level1_on_held_out_shapes():
    l1, l2 = _median_errors("equigym/Sliding-v0", {"shape": "test"}, NETS / "sliding", 30, 11)
    assert l2 < 0.006 and l2 < 2 * l1  # m (measured about 2 mm each)


@needs_gl
def test_committed_cloth_network_beats_level1_on_held_out_holes():
    l1, l2 = _median_errors("equigym/ClothHanging-v0", {"hole": "test"}, NETS / "cloth", 30, 11)
    assert l2 < 0.85 * l1  # measured 33 vs 53 mm on 300 held-out frames


def test_cli_bad_input_exits_with_a_message(tmp_path):
    with pytest.raises(SystemExit, match="cannot make"):
        kp_main(["--env", "equigym/Nope-v0", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="epochs must be >= 1"):
        kp_main(["--epochs", "0", "--out", str(tmp_path / "y")])
    with pytest.raises(SystemExit, match="--jitter must be >= 0"):
        kp_main(["--jitter", "-0.1", "--out", str(tmp_path / "y")])
    with pytest.raises(SystemExit, match="use level 0"):
        kp_main(["--env", "equigym/Hopper3D-v0", "--episodes", "1", "--out", str(tmp_path / "z")])


# --- in the loop ----------------------------------------------------------------------------
def test_module_wrapper_puts_perception_before_the_forecaster(tmp_path):
    from equigym.modules.forecast.train import main as fc_main

    fc = tmp_path / "fc"
    fc_main(["--env", "equigym/RopeClosing-v0", "--episodes", "2", "--epochs", "1",
             "--history", "4", "--horizon", "4", "--channels", "4", "--hidden", "16",
             "--out", str(fc)])  # fmt: skip
    wrap = module_wrapper(fc, 0, None, {"noise": 0.0, "dropout": 0.0, "latency": 1})
    env = wrap(gym.make("equigym/RopeClosing-v0"))
    assert type(env).__name__ == "ForecastWrapper"
    assert type(env.env).__name__ == "PerceptionWrapper"
    check_env(env, skip_render_check=True)
    assert module_wrapper() is None


def test_train_with_perception_and_evaluate(tmp_path):
    from equigym.evaluate import EvalConfig, evaluate_runs
    from equigym.evaluation.rollout import load_run
    from equigym.train import main as train_main

    run = tmp_path / "run"
    train_main(["--env", "equigym/Sliding-v0", "--policy", "hepi", "--perception", "0",
                "--perception-noise", "0.01", "--total-timesteps", "64", "--n-envs", "1",
                "--n-steps", "64", "--batch-size", "64", "--n-epochs", "1", "--hidden-dim", "16",
                "--eval-freq", "0", "--eval-episodes", "1", "--checkpoint-freq", "0",
                "--no-progress-bar", "--run-dir", str(run)])  # fmt: skip
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["perception"] == 0 and cfg["perception_noise"] == 0.01
    env = load_run(run).wrapper(gym.make("equigym/Sliding-v0"))
    assert isinstance(env, PerceptionWrapper) and env.perception.noise == 0.01
    res = evaluate_runs(EvalConfig(runs=(run,), episodes=1, modes=("deterministic",),
                                   baselines=False, out=tmp_path / "ev"))  # fmt: skip
    assert np.isfinite(res["rows"][0]["mean_return"])
    run_ = load_run(run)
    assert run_.module_wrapper("none") is None
    env = run_.module_wrapper("1")(gym.make("equigym/Sliding-v0"))
    assert env.perception.level == 1
    res = evaluate_runs(EvalConfig(runs=(run,), episodes=1, modes=("deterministic",),
                                   baselines=False, perception="1", out=tmp_path / "ev1"))
    assert np.isfinite(res["rows"][0]["mean_return"])
    with pytest.raises(SystemExit, match="must be 0, 1 or 2"):
        train_main(["--env", "equigym/Sliding-v0", "--perception", "5"])
    with pytest.raises(SystemExit, match="used only by --perception 2"):
        train_main(["--env", "equigym/Sliding-v0", "--perception", "1",
                    "--perception-net", str(NETS / "sliding")])
    with pytest.raises(SystemExit, match="add --perception 0"):
        train_main(["--env", "equigym/Sliding-v0", "--perception-latency", "3"])
    with pytest.raises(SystemExit, match="use level 0"):
        train_main(["--env", "equigym/Hopper3D-v0", "--perception", "1"])
    with pytest.raises(ValueError, match="used only with --perception 2"):
        evaluate_runs(EvalConfig(runs=(run,), perception_net=NETS / "sliding"))


def test_train_with_level2_keeps_a_copy_of_the_network(tmp_path):
    from equigym.evaluation.rollout import load_run
    from equigym.train import main as train_main

    run = tmp_path / "run"
    train_main(["--env", "equigym/Sliding-v0", "--policy", "mlp", "--perception", "2",
                "--perception-net", str(NETS / "sliding"), "--total-timesteps", "32",
                "--n-envs", "1", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
                "--eval-freq", "0", "--eval-episodes", "0", "--checkpoint-freq", "0",
                "--no-progress-bar", "--run-dir", str(run)])  # fmt: skip
    assert (run / "keypoints.pt").read_bytes() == (NETS / "sliding" / "keypoints.pt").read_bytes()
    env = load_run(run).wrapper(gym.make("equigym/Sliding-v0"))
    assert env.perception.path == str(run / "keypoints.pt")
    with pytest.raises(SystemExit, match="needs a trained keypoint network"):
        train_main(["--env", "equigym/Sliding-v0", "--perception", "2"])
