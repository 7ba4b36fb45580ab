"""train.py: end-to-end tiny runs, run-folder contents, --help, and errors for bad input."""

import dataclasses
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import equigym  # noqa: E402,F401
from equigym import policies  # noqa: E402
from equigym.train import PRESETS, TrainConfig, apply_preset, main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--env", "equigym/Hopper3D-v0", "--policy", "gnn",
    "--total-timesteps", "128", "--n-envs", "2", "--n-steps", "64", "--batch-size", "64",
    "--n-epochs", "1", "--hidden-dim", "16", "--n-layers", "1", "--no-progress-bar",
]  # fmt: skip


def _flags() -> list[str]:
    flags = []
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        flags.append(flag)
        if f.type in (bool, "bool"):
            flags.append("--no-" + f.name.replace("_", "-"))
    return flags


def test_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    main([*TINY, "--run-dir", str(run), "--eval-episodes", "2", "--checkpoint-freq", "64"])
    out = capsys.readouterr().out
    assert str(run) in out and "Evaluation:" in out
    for name in ("config.json", "graph_spec.json", "final_model.zip", "eval.json"):
        assert (run / name).is_file(), name
    assert (run / "vecnormalize.pkl").is_file()
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "checkpoints").glob("*.zip")) == [
        "model_128_steps.zip",
        "model_64_steps.zip",
    ]
    config = json.loads((run / "config.json").read_text())
    assert config["env"] == "equigym/Hopper3D-v0" and config["policy"] == "gnn"
    assert config["policy_cfg"] == {"hidden_dim": 16, "n_layers": 1}
    assert set(config["versions"]) >= {"equigym", "mujoco", "torch", "stable_baselines3"}
    spec = json.loads((run / "graph_spec.json").read_text())
    assert spec["action_dim"] == 15 and spec["node_types"][0]["name"] == "body"
    ev = json.loads((run / "eval.json").read_text())
    assert ev["episodes"] == 2 and len(ev["returns"]) == 2
    assert ev["mean_return"] == pytest.approx(np.mean(ev["returns"]))
    assert ev["timesteps"] == 128
    assert ev["random_policy"]["episodes"] == 2 and ev["random_policy"]["mean_length"] >= 1


def test_multi_morphology_mlp_run(tmp_path):
    run = tmp_path / "walkers"
    morphs = "walker_7_full,walker_2_right_leg_left_knee"
    main(
        [
            *TINY,
            "--env", "equigym/Walker3D-v0", "--policy", "mlp", "--morphologies", morphs,
            "--run-dir", str(run), "--eval-episodes", "1", "--checkpoint-freq", "0",
            "--no-norm-reward",
        ]
    )  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["resolved_morphologies"] == morphs.split(",")
    ev = json.loads((run / "eval.json").read_text())
    assert set(ev["per_morphology"]) == set(morphs.split(","))
    assert ev["episodes"] == 2
    assert not (run / "checkpoints").exists() and not (run / "vecnormalize.pkl").exists()


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in _flags():
        assert flag in text, flag
    assert "Hopper3D" in text and "walker:train" in text


def test_every_field_has_a_docstring():
    # tyro turns attribute docstrings into --help text; each needs one.
    source = (ROOT / "train.py").read_text()
    for f in dataclasses.fields(TrainConfig):
        block = source.split(f"    {f.name}: ", 1)[1].split("\n", 2)
        assert block[1].strip().startswith('"""'), f.name


def test_policy_choices_match_registry():
    hints = typing.get_type_hints(TrainConfig)
    assert set(typing.get_args(hints["policy"])) == set(policies.POLICIES)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "equigym/Nope-v0"], "Unknown env id"),
        (["--morphologies", "walker:dev"], "Unknown split"),
        (["--morphologies", "walker_99_wings"], "walker_99_wings"),
        (["--n-envs", "0"], "--n-envs must be >= 1"),
        (["--hidden-dim", "0"], "--hidden-dim"),
        (["--env", "CartPole-v1"], "not an equigym env"),
        (["--env", "equigym/Hopper3D-v0", "--morphologies", "walker_7_full"], "Locomotion3D"),
    ],
)
def test_bad_input_exits_with_a_message(args, message, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--run-dir", str(tmp_path / "x")])
    assert message in str(exit_info.value.code)
    assert not (tmp_path / "x").exists()


def test_unknown_policy_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--policy", "ponita_xl"])
    assert exit_info.value.code != 0
    err = capsys.readouterr()
    assert "ponita_xl" in err.out + err.err


def test_existing_run_dir_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="already holds a run"):
        main(["--run-dir", str(tmp_path)])


def test_module_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "equigym.train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT.parent,
    )
    assert done.returncode == 0, done.stderr
    assert "--total-timesteps" in done.stdout


def _run_args(run: Path, total: int) -> list[str]:
    return [
        "--total-timesteps", str(total), "--n-envs", "2", "--n-steps", "64", "--batch-size", "64",
        "--n-epochs", "1", "--hidden-dim", "16", "--n-layers", "1", "--checkpoint-freq", "256",
        "--eval-episodes", "0", "--no-progress-bar", "--run-dir", str(run),
    ]  # fmt: skip


def test_resume_after_sigkill_loses_at_most_one_interval(tmp_path):
    import signal
    import time

    from stable_baselines3 import PPO

    run = tmp_path / "killed"
    evals = ["--eval-freq", "256", "--eval-envs", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "equigym.train", *_run_args(run, 100_000), *evals],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )  # fmt: skip
    latest = run / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if latest.exists() and json.loads(latest.read_text())["timesteps"] >= 768:
                break
            assert proc.poll() is None, "training exited before it was killed"
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = json.loads(latest.read_text())["timesteps"]
    assert not (run / "final_model.zip").exists()
    # The evaluation curve is written after every evaluation, so the killed run kept it.
    killed_curve = [h["timesteps"] for h in json.loads((run / "eval_history.json").read_text())]
    assert killed_curve[:2] == [256, 512], killed_curve
    # Resume to a budget just past the checkpoint: it continues from it, not from zero.
    main(["--resume", str(run), "--total-timesteps", str(saved + 512)])
    model = PPO.load(run / "final_model.zip")
    assert model.num_timesteps >= saved + 512
    assert model.num_timesteps < 2 * (saved + 512)  # did not start over
    # Evaluations after the checkpoint were lost with the interval and redone, not doubled.
    curve = [h["timesteps"] for h in json.loads((run / "eval_history.json").read_text())]
    assert curve == sorted(set(curve)) and curve[-1] >= saved + 256, curve
    assert [t for t in curve if t <= saved] == [t for t in killed_curve if t <= saved]
    events = list((run / "tb").rglob("events.out.tfevents.*"))
    assert len({e.parent for e in events}) == 1  # one TensorBoard run, continued


def test_resume_falls_back_past_a_corrupt_checkpoint(tmp_path):
    from equigym.agents.checkpoint import list_checkpoints

    run = tmp_path / "run"
    main(_run_args(run, 768))
    ckpts = list_checkpoints(run / "checkpoints")
    assert [c.timesteps for c in ckpts] == [768, 512, 256]
    ckpts[0].model.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable"):
        main(["--resume", str(run), "--total-timesteps", "1024"])
    assert (run / "final_model.zip").exists()


@pytest.mark.parametrize("what", ["missing", "no_checkpoint", "bad_config"])
def test_resume_errors_exit_with_a_message(tmp_path, what):
    run = tmp_path / "run"
    if what != "missing":
        run.mkdir()
        text = "{not json" if what == "bad_config" else json.dumps(
            {f.name: getattr(apply_preset(TrainConfig()), f.name)
             for f in dataclasses.fields(TrainConfig) if f.name not in ("run_dir", "resume")}
        )
        (run / "config.json").write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["--resume", str(run)])
    message = str(exit_info.value.code)
    expected = {"missing": "does not exist", "no_checkpoint": "No checkpoint",
                "bad_config": "not a readable run config"}[what]
    assert expected in message, message


def test_periodic_evaluation_is_logged(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "evals"
    main([*TINY, "--total-timesteps", "256", "--eval-freq", "128", "--eval-envs", "2",
          "--eval-episodes", "0", "--checkpoint-freq", "0", "--run-dir", str(run)])  # fmt: skip
    history = json.loads((run / "eval_history.json").read_text())
    assert [h["timesteps"] for h in history] == [128, 256]
    for h in history:
        assert h["episodes"] == 2 and h["mean_length"] >= 1
        # gnn is a non-equivariant baseline: rotating the states changes its outputs
        assert h["equivariance_error"] > 1e-4
    events = next((run / "tb").rglob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"eval/mean_return", "eval/equivariance_error"} <= tags, tags


def test_presets_fill_only_unset_options():
    hopper = apply_preset(TrainConfig(env="equigym/Hopper3D-v0"))
    assert (hopper.n_steps, hopper.batch_size, hopper.n_epochs, hopper.ent_coef,
            hopper.total_timesteps) == (256, 256, 10, 0.0, 200_000)
    default = apply_preset(TrainConfig())  # the README's main command: HEPi on Sliding
    assert (default.env, default.policy) == ("equigym/Sliding-v0", "hepi")
    assert (default.n_steps, default.batch_size, default.n_epochs, default.total_timesteps) == (
        100, 200, 5, 60_000)
    assert PRESETS["rigid"]["n_steps"] == 100
    insertion = apply_preset(TrainConfig(env="equigym/Insertion-v0", n_steps=50, ent_coef=0.1))
    assert (insertion.n_steps, insertion.ent_coef, insertion.n_epochs) == (50, 0.1, 5)


def test_rigid_task_run_reports_success_and_the_scripted_baseline(tmp_path, capsys):
    run = tmp_path / "insertion"
    main(["--env", "equigym/Insertion-v0", "--policy", "hepi", "--hidden-dim", "16",
          "--n-envs", "2", "--total-timesteps", "200", "--eval-freq", "0", "--eval-episodes",
          "2", "--checkpoint-freq", "0", "--no-progress-bar", "--run-dir", str(run)])
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 2 and result["mean_length"] == 100
    assert {"success_rate", "random_policy", "scripted_policy"} <= set(result)
    assert result["scripted_policy"]["success_rate"] == 1.0
    config = json.loads((run / "config.json").read_text())
    assert (config["n_steps"], config["n_epochs"]) == (100, 5)  # the rigid preset, recorded
    assert "scripted controller 100%" in capsys.readouterr().out


def test_deformable_task_run_uses_its_preset_and_scripted_baseline(tmp_path):
    run = tmp_path / "rope"
    main(["--env", "equigym/RopeClosing-v0", "--policy", "mlp", "--n-envs", "2",
          "--total-timesteps", "400", "--eval-freq", "0", "--eval-episodes", "2",
          "--checkpoint-freq", "0", "--no-progress-bar", "--run-dir", str(run)])
    result = json.loads((run / "eval.json").read_text())
    assert result["mean_length"] == 200
    assert result["scripted_policy"]["success_rate"] == 1.0
    config = json.loads((run / "config.json").read_text())
    assert (config["n_steps"], config["batch_size"]) == (PRESETS["deformable"]["n_steps"], 200)
