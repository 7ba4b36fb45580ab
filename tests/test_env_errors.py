"""Bad input and misfit robots: every error is a clear exception and leaves the env intact."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import ASSETS, LOCOMOTION_ID, all_finite, assert_obs_equal, make_env

from equigym.envs.locomotion import MORPHOLOGIES, Locomotion3DEnv, resolve_morphologies
from equigym.envs.locomotion.morphologies import parse_morphology


def _state(env):
    d = env.unwrapped.data
    return {
        "qpos": d.qpos.copy(), "qvel": d.qvel.copy(), "time": d.time, "ctrl": d.ctrl.copy(),
        "act": d.act.copy(), "qacc_warmstart": d.qacc_warmstart.copy(),
    }


def _assert_state_equal(a, b):
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# --- 10. bad actions ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, where",
    [(np.nan, "actuated"), (np.inf, "actuated"), (-np.inf, "actuated"), (np.nan, "masked")],
    ids=["nan", "inf", "-inf", "nan-on-masked-dim"],
)
def test_non_finite_action_raises_and_leaves_state(value, where, rng):
    env, twin = make_env("walker_7_full"), make_env("walker_7_full")
    obs, _ = env.reset(seed=0)
    twin.reset(seed=0)
    warm = rng.uniform(-1, 1, env.action_space.shape)
    env.step(warm)
    twin.step(warm)
    before = _state(env)
    a = rng.uniform(-1, 1, env.action_space.shape)
    idx = np.flatnonzero(obs["action_mask"] > 0 if where == "actuated" else obs["action_mask"] == 0)
    bad = a.copy()
    bad[idx[1]] = value
    with pytest.raises(ValueError, match=r"(?i)non-finite|nan"):
        env.step(bad)
    _assert_state_equal(_state(env), before)
    # The env carries on exactly as if the bad call never happened.
    s1, s2 = env.step(a), twin.step(a)
    assert_obs_equal(s1[0], s2[0])
    assert s1[1:4] == s2[1:4]


@pytest.mark.parametrize(
    "shape",
    [(22,), (20,), (2, 21), (21, 2), (), (0,), (1, 20)],
    ids=["too-long", "too-short", "2xA", "Ax2", "scalar", "empty", "1x(A-1)"],
)
def test_wrong_shape_action_raises(walker, shape):
    walker.reset(seed=0)
    before = _state(walker)
    with pytest.raises(ValueError, match="shape"):
        walker.step(np.zeros(shape))
    _assert_state_equal(_state(walker), before)


def test_action_as_list_or_ints_is_accepted(walker):
    walker.reset(seed=0)
    ref = make_env("walker_7_full")
    ref.reset(seed=0)
    a = [0, 1, -1] * 7
    assert_obs_equal(walker.step(a)[0], ref.step(np.asarray(a, np.float32))[0])
    assert_obs_equal(walker.step(np.asarray(a, np.int64))[0],
                     ref.step(np.asarray(a, np.float64))[0])


def test_huge_finite_action_is_clipped(walker):
    """1e308 squares to inf: clipping must come before the control cost."""
    ref = make_env("walker_7_full")
    walker.reset(seed=1)
    ref.reset(seed=1)
    a = np.full(21, 1e308)
    a[::2] = -1e308
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # see the next test
        s1 = walker.step(a)
    s2 = ref.step(np.clip(a, -1, 1))
    assert_obs_equal(s1[0], s2[0])
    assert np.isfinite(s1[1]) and s1[1] == s2[1]


def test_huge_finite_action_gives_no_numpy_warning(walker):
    """A finite action is valid input: validating it must not overflow (numpy RuntimeWarning,
    an error under ``-W error``)."""
    walker.reset(seed=1)
    a = np.full(21, 1e308)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        walker.step(a)


# --- 10. bad arguments -------------------------------------------------------------------------
def test_unknown_morphology_lists_valid_names():
    with pytest.raises(ValueError, match="walker_99_full") as err:
        gym.make(LOCOMOTION_ID, morphology="walker_99_full")
    msg = str(err.value)
    assert all(m in msg for m in MORPHOLOGIES), "every valid name should be listed"
    assert "xml_file" in msg


@pytest.mark.parametrize("name", ["walker", "walker_6_full", "walker_7", "full", "Walker_7_full",
                                  "walker_7_full_extra", "robot_3_full", ""])
def test_malformed_morphology_names(name):
    with pytest.raises(ValueError, match="Unknown morphology"):
        parse_morphology(name)


def test_unknown_kwarg_names_it_and_lists_valid():
    with pytest.raises(ValueError, match="frame_skipp") as err:
        gym.make("equigym/Walker3D-v0", frame_skipp=2)
    assert "frame_skip" in str(err.value).split("Valid")[1]
    with pytest.raises(ValueError, match="bogus"):
        Locomotion3DEnv(bogus=1)


def test_unknown_reset_option(walker):
    walker.reset(seed=0)
    with pytest.raises(ValueError, match="headng"):
        walker.reset(seed=0, options={"headng": 1.0})
    obs, _ = walker.reset(seed=0, options={"heading": 1.0})  # still usable
    assert all_finite(obs)


@pytest.mark.parametrize("mode", ["bogus", "rgb", "ansi"])
def test_invalid_render_mode(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym.make warns about the mode before the env raises
        with pytest.raises(ValueError, match="render_mode"):
            gym.make("equigym/Hopper3D-v0", render_mode=mode)


def test_unknown_camera_raises_on_render():
    env = make_env("walker_7_full", render_mode="rgb_array", camera_name="nope", width=16,
                   height=16)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="nope"):
        env.render()
    env.close()


@pytest.mark.parametrize("max_n", [6, 1, 0])
def test_max_nodes_smaller_than_robot(max_n):
    with pytest.raises(ValueError, match="max_nodes"):
        make_env("walker_7_full", max_nodes=max_n)


@pytest.mark.parametrize("frame_skip", [0, -1])
def test_bad_frame_skip(frame_skip):
    with pytest.raises(ValueError, match="frame_skip"):
        make_env("hopper_3_shin", frame_skip=frame_skip)


@pytest.mark.parametrize("selection, match", [
    ("walker:val", "split"), ("", "No morphology"), (" , ", "No morphology"),
    ("dragon", "Unknown morphology"), ("walker:train,nope_3_x", "Unknown morphology"),
])
def test_resolve_morphologies_errors(selection, match):
    with pytest.raises(ValueError, match=match):
        resolve_morphologies(selection)


# --- 10. unstable physics ----------------------------------------------------------------------
def test_unstable_physics_truncates_with_finite_obs(no_mujoco_log):
    env, fresh = make_env("walker_7_full"), make_env("walker_7_full")
    obs0, _ = env.reset(seed=0)
    env.data.qvel[:] = 1e12
    obs, reward, terminated, truncated, info = env.step(np.zeros(21))
    assert info["sim_unstable"] is True
    assert truncated is True and terminated is False
    assert all_finite(obs) and np.isfinite(reward)
    assert reward == 0.0
    assert info["reward_progress"] == info["reward_alive"] == info["reward_ctrl"] == 0.0
    # The last finite observation, as a fresh copy.
    assert_obs_equal(obs, obs0)
    assert all(not np.shares_memory(obs[k], obs0[k]) for k in obs)
    assert env.observation_space.contains(obs)
    # A second blow-up in the same episode is reported too.
    env.data.qvel[:] = 1e12
    _, _, _, truncated, info = env.step(np.zeros(21))
    assert info["sim_unstable"] is True and truncated is True
    # After a reset everything is back to normal and matches a fresh env.
    assert_obs_equal(env.reset(seed=4)[0], fresh.reset(seed=4)[0])
    a = np.full(21, 0.3)
    s1, s2 = env.step(a), fresh.step(a)
    assert_obs_equal(s1[0], s2[0])
    assert s1[4]["sim_unstable"] is False and s1[3] is False


def test_stable_steps_report_stable(walker):
    walker.reset(seed=0)
    for _ in range(10):
        *_, truncated, info = walker.step(np.zeros(21))
        assert info["sim_unstable"] is False and truncated is False


def test_unstable_external_robot(no_mujoco_log):
    env = make_env(xml_file=str(ASSETS / "unstable.xml"))
    env.reset(seed=0)
    seen = False
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(np.ones(env.action_space.shape))
        assert all_finite(obs) and np.isfinite(reward)
        if info["sim_unstable"]:
            assert truncated and not terminated
            seen = True
            break
    assert seen, "a gear of 1e9 with a 50 ms Euler step should blow up"


# --- 7. external XML errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    "xml, match",
    [
        ("no_free_joint.xml", r"exactly one free joint.*found 0"),
        ("two_free_joints.xml", r"exactly one free joint.*found 2"),
        ("slide_joint.xml", r"'piston_slide' is a slide joint"),
        ("ball_joint.xml", r"'shoulder' is a ball joint"),
        ("four_hinges.xml", r"'wrist' has more than 3 hinges"),
        ("tendon_actuator.xml", r"'tendon_motor' does not drive a hinge"),
        ("no_actuators.xml", r"no actuators"),
        ("shared_hinge.xml", r"same hinge"),
        ("jointed_scenery.xml", r"outside the robot's tree.*door"),
    ],
)
def test_misfit_xml_explains_why(xml, match):
    with pytest.raises(ValueError, match=match) as err:
        gym.make(LOCOMOTION_ID, xml_file=str(ASSETS / xml))
    assert xml in str(err.value), "the message should name the file"


@pytest.mark.parametrize("xml", ["malformed.xml", "unknown_element.xml"])
def test_unparsable_xml(xml):
    with pytest.raises(ValueError, match="Could not load MuJoCo XML") as err:
        make_env(xml_file=str(ASSETS / xml))
    assert xml in str(err.value)


def test_missing_xml_file(tmp_path):
    missing = tmp_path / "nowhere" / "robot.xml"
    with pytest.raises(FileNotFoundError, match="robot.xml"):
        gym.make(LOCOMOTION_ID, xml_file=str(missing))
    with pytest.raises(FileNotFoundError):
        make_env(xml_file=tmp_path)  # a directory is not a file


# --- argument validation (one ValueError naming the argument) ---------------------------------
@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"morphology": 5}, "morphology"),
        ({"max_nodes": "abc"}, "max_nodes"),
        ({"max_nodes": 0}, "max_nodes"),
        ({"frame_skip": 1.5}, "frame_skip"),
        ({"healthy_z_range": 0.5}, "healthy_z_range"),
        ({"healthy_z_range": (2.0, 1.0)}, "low < high"),
        ({"reset_noise_scale": -1.0}, "reset_noise_scale"),
        ({"max_tilt": float("nan")}, "max_tilt"),
        ({"ctrl_cost_weight": "high"}, "ctrl_cost_weight"),
        ({"alive_bonus": float("inf")}, "alive_bonus"),
    ],
    ids=lambda v: str(v),
)
def test_bad_constructor_arguments_name_the_argument(kwargs, fragment):
    kwargs = {"morphology": "walker_7_full", **kwargs}
    with pytest.raises(ValueError, match=fragment):
        Locomotion3DEnv(**kwargs)


def test_morphology_and_xml_file_together_raise(assets):
    with pytest.raises(ValueError, match="not both"):
        Locomotion3DEnv(morphology="walker_7_full", xml_file=str(assets / "tripod.xml"))


@pytest.mark.parametrize("name", ["heading", "target_angle"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), "north"])
def test_non_finite_reset_options_raise(walker, name, value):
    with pytest.raises(ValueError, match=name):
        walker.reset(seed=0, options={name: value})


_FLOOR_ROOT = """<mujoco>
  <worldbody>
    <geom type="plane" size="0 0 0.05"/>
    <body name="torso" pos="0 0 {z}">
      <freejoint/>
      <geom type="sphere" size="0.1"/>
      <body name="leg" pos="0.1 0 0">
        <joint name="hip" type="hinge" axis="0 1 0" range="-30 30"/>
        <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.04"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="hip"/></actuator>
</mujoco>"""


def test_external_root_at_zero_needs_an_explicit_height_range(tmp_path):
    path = tmp_path / "low.xml"
    path.write_text(_FLOOR_ROOT.format(z=0))
    with pytest.raises(ValueError, match="healthy_z_range"):
        Locomotion3DEnv(xml_file=str(path))
    env = Locomotion3DEnv(xml_file=str(path), healthy_z_range=(-1.0, 1.0))
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(np.zeros(env.action_space.shape))
    assert not terminated and info["is_healthy"]


def test_external_root_above_floor_gets_an_open_ended_default(tmp_path):
    path = tmp_path / "ok.xml"
    path.write_text(_FLOOR_ROOT.format(z=0.5))
    env = Locomotion3DEnv(xml_file=str(path))
    assert env.healthy_z_range == (pytest.approx(0.15), float("inf"))
