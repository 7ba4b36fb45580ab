"""The EqMotion-style forecaster: shapes, exact E(3) equivariance, masking, data, training CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from equigym.modules.forecast.data import collect_tracks, windows
from equigym.modules.forecast.model import (
    EqMotionForecaster,
    constant_velocity,
    load_forecaster,
)
from equigym.modules.forecast.train import equivariance_error, main


def _past(b: int = 3, n: int = 7, t: int = 6, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    walk = torch.randn(b, n, 1, 3, generator=gen) + 0.1 * torch.randn(b, n, t, 3,
                                                                       generator=gen).cumsum(2)
    return walk


def _trained_like(model: EqMotionForecaster) -> EqMotionForecaster:
    torch.nn.init.normal_(model.out.weight, std=0.3)  # the output map starts at zero
    return model


def test_untrained_forecaster_is_constant_velocity():
    past = _past()
    model = EqMotionForecaster(history=6, horizon=4, channels=4, hidden=8, layers=1, k=3)
    out = model(past, torch.ones(3, 7))
    assert out.shape == (3, 7, 4, 3)
    torch.testing.assert_close(out, constant_velocity(past, 4))


@pytest.mark.parametrize("reflect", [False, True])
def test_forecaster_is_e3_equivariant(reflect):
    torch.manual_seed(0)
    model = _trained_like(EqMotionForecaster(history=6, horizon=4, channels=4, hidden=8, k=3))
    past, mask = _past(), torch.ones(3, 7)
    mask[1, 5:] = 0.0
    q, _ = torch.linalg.qr(torch.randn(3, 3))
    q = q * torch.linalg.det(q).sign()  # a rotation
    if reflect:
        q = q * torch.tensor([1.0, 1.0, -1.0])
    assert torch.linalg.det(q) == pytest.approx(-1.0 if reflect else 1.0, abs=1e-5)
    t = torch.tensor([0.5, -2.0, 1.0])
    with torch.no_grad():
        moved, base = model(past @ q.T + t, mask), model(past, mask)
    real = mask > 0.5
    err = (moved - (base @ q.T + t))[real].abs().max()
    assert err < 1e-5, err
    assert (base - constant_velocity(past, 4))[real].abs().max() > 1e-3  # not the baseline


def test_padded_nodes_change_nothing():
    torch.manual_seed(0)
    model = _trained_like(EqMotionForecaster(history=6, horizon=4, channels=4, hidden=8, k=3))
    past, mask = _past(b=1, n=5), torch.ones(1, 5)
    # Padded nodes right among the real ones: only the mask keeps them out of the kNN graph.
    junk = torch.cat([past, past[:, :3] + 0.01 * torch.randn(1, 3, 6, 3)], dim=1)
    with torch.no_grad():
        a = model(past, mask)
        b = model(junk, torch.cat([mask, torch.zeros(1, 3)], dim=1))
    torch.testing.assert_close(b[:, :5], a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b[:, 5:], junk[:, 5:, -1:].expand(-1, -1, 4, -1))


def test_bad_shapes_raise():
    model = EqMotionForecaster(history=6, horizon=4)
    with pytest.raises(ValueError, match="past must be"):
        model(torch.zeros(1, 3, 5, 3), torch.ones(1, 3))
    with pytest.raises(ValueError):
        EqMotionForecaster(history=1)


def test_tracks_and_windows_never_cross_a_reset():
    tracks = collect_tracks("equigym/RopeClosing-v0", 2, seed=3, policy="random")
    assert len(tracks.episodes) == 2 and tracks.node_type == "rope"
    n = tracks.masks[0].shape[0]
    assert all(ep.shape[1:] == (n, 3) for ep in tracks.episodes)
    w, m = windows(tracks, history=4, horizon=3, stride=5)
    per_episode = [len(range(0, len(ep) - 7 + 1, 5)) for ep in tracks.episodes]
    assert w.shape == (sum(per_episode), n, 7, 3) and m.shape == (len(w), n)
    np.testing.assert_array_equal(w[per_episode[0]], tracks.episodes[1][:7].transpose(1, 0, 2))
    # Reset-padded windows start with the reset frame repeated (what the wrapper sees).
    padded, _ = windows(tracks, history=4, horizon=3, stride=1, pad_start=True)
    ep0 = tracks.episodes[0].transpose(1, 0, 2)
    np.testing.assert_array_equal(padded[0], np.concatenate([ep0[:, :1]] * 3 + [ep0[:, :4]], 1))
    with pytest.raises(ValueError, match="no node type"):
        collect_tracks("equigym/RopeClosing-v0", 1, node_type="cloth")


def test_cli_trains_beats_constant_velocity_and_reloads(tmp_path):
    out = tmp_path / "rope"
    main(["--env", "equigym/RopeShaping-v0", "--episodes", "6", "--epochs", "3",
          "--history", "6", "--horizon", "4", "--channels", "8", "--hidden", "32",
          "--out", str(out)])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["equivariance_error"]["relative"] < 1e-5
    assert len(metrics["forecaster"]["ade_per_horizon"]) == 4
    # Even a few epochs on six episodes beat extrapolating the velocity on unseen episodes.
    assert metrics["ade_ratio_to_constant_velocity"] < 1.0, metrics
    model = load_forecaster(out)
    past = torch.zeros(1, 80, 6, 3)
    assert model(past, torch.ones(1, 80)).shape == (1, 80, 4, 3)
    assert equivariance_error(model, _past(n=9, t=6), torch.ones(3, 9))["abs_m"] < 1e-4
    (out / "forecaster.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable forecaster"):
        load_forecaster(out)
    with pytest.raises(FileNotFoundError):
        load_forecaster(tmp_path / "nothing")


def _wrapped(env_id: str = "equigym/RopeClosing-v0", **kwargs):
    import gymnasium as gym

    from equigym.modules.forecast.wrapper import ForecastWrapper

    torch.manual_seed(0)
    model = _trained_like(EqMotionForecaster(history=4, horizon=4, channels=4, hidden=8, k=3))
    return ForecastWrapper(gym.make(env_id), model, **kwargs), model


def test_wrapper_adds_forecast_channels_and_passes_check_env():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env, model = _wrapped()
    spec = env.graph_spec
    rope = spec.node_type("rope")
    assert rope.vector_names[-3:] == ("forecast_1", "forecast_2", "forecast_4")
    assert rope.vector_kinds[-3:] == ("vector",) * 3
    obs, _ = env.reset(seed=0)
    assert obs["rope/vec"].shape == (rope.count, len(rope.vector_names), 3)
    assert env.observation_space.contains(obs)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    past = torch.as_tensor(np.stack(env._history, axis=1))[None]
    with torch.no_grad():
        expected = model(past, torch.ones(1, rope.count))[0, :, [0, 1, 3]] - past[0, :, -1:]
    np.testing.assert_allclose(obs["rope/vec"][:, -3:], expected.numpy(), atol=1e-6)
    check_env(env, skip_render_check=True)  # a "human" render check aborts headless
    sb3_check_env(env)
    with pytest.raises(ValueError, match="forecast steps"):
        _wrapped(steps=(0, 9))
    with pytest.raises(ValueError, match="no node type"):
        _wrapped(node_type="cloth")


def test_wrapped_scene_equivariance():
    """Turning and shifting the rope's scene turns and shifts the forecasts with it."""
    from conftest import rollout, rot_z

    from equigym.graph import transform_action, transform_observation

    env, _ = _wrapped()
    actions = np.random.default_rng(2).uniform(-1, 1, (8, *env.action_space.shape))
    base = rollout(env, 4, actions)
    rot, t = rot_z(0.9), np.array([1.5, -0.5, 0.0])
    moved = rollout(env, 4, [transform_action(a, env.graph_spec, rot) for a in actions],
                    options={"scene_rotation": rot, "scene_translation": t})  # fmt: skip
    for (o1, _, _), (o2, _, _) in zip(base, moved, strict=True):
        expected = transform_observation(o1, env.graph_spec, rot, t)
        # The simulator reproduces a moved scene to ~1e-4 (test_env_deformable); the forecaster
        # (a random, untrained one with large outputs) may double that, no more.
        np.testing.assert_allclose(o2["rope/vec"], expected["rope/vec"], atol=5e-4)


def test_train_with_forecast_and_evaluate(tmp_path):
    from equigym.evaluate import EvalConfig, evaluate_runs
    from equigym.train import main as train_main

    fc = tmp_path / "fc"
    main(["--env", "equigym/RopeClosing-v0", "--episodes", "3", "--epochs", "1",
          "--history", "4", "--horizon", "4", "--channels", "4", "--hidden", "16",
          "--out", str(fc)])  # fmt: skip
    run = tmp_path / "run"
    train_main(["--env", "equigym/RopeClosing-v0", "--policy", "hepi", "--forecast", str(fc),
                "--total-timesteps", "64", "--n-envs", "1", "--n-steps", "64",
                "--batch-size", "64", "--n-epochs", "1", "--hidden-dim", "16",
                "--eval-freq", "0", "--eval-episodes", "1", "--checkpoint-freq", "0",
                "--no-progress-bar", "--run-dir", str(run)])  # fmt: skip
    assert (run / "forecaster.pt").read_bytes() == (fc / "forecaster.pt").read_bytes()
    assert json.loads((run / "config.json").read_text())["forecast"] == str(fc.resolve())
    spec = json.loads((run / "graph_spec.json").read_text())
    rope = next(n for n in spec["node_types"] if n["name"] == "rope")
    assert "forecast_4" in rope["vector_names"]
    res = evaluate_runs(EvalConfig(runs=(run,), episodes=1, modes=("deterministic",),
                                   baselines=False, out=tmp_path / "ev"))  # fmt: skip
    assert np.isfinite(res["rows"][0]["mean_return"])
    with pytest.raises(SystemExit, match="No forecaster"):
        train_main(["--env", "equigym/RopeClosing-v0", "--forecast", str(tmp_path / "none")])


@pytest.mark.parametrize(
    "args, message",
    [
        (("equigym/Nope-v0", 1), "cannot make"),
        (("equigym/Hopper3D-v0", 1), "No scripted controller"),
        (("equigym/RopeClosing-v0", 0), "episodes must be >= 1"),
    ],
)
def test_collect_tracks_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        collect_tracks(*args)


def test_cli_bad_input_exits_with_a_message(tmp_path):
    with pytest.raises(SystemExit, match="val_fraction must be in"):
        main(["--val-fraction", "1.5", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="cannot make"):
        main(["--env", "equigym/Nope-v0", "--out", str(tmp_path / "y")])
