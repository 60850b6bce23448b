"""clockwork.Config: presets, dicts, files, overrides, and every kind of bad input."""

import pytest

import clockwork as cw


def test_preset_and_overrides():
    c = cw.Config.preset("blog-x2")
    assert (c.p, c.width, c.models, c.dtype, c.device) == (71, 500, 1, "f32", "cpu")
    d = c.with_(p=97)
    assert d.p == 97 and c.p == 71  # immutable: with_ returns a new config
    assert c.with_({"task.p": 97}) == d
    assert c.with_({"task": {"p": 97}}) == d
    assert c.with_(task__p=97) == d
    e = c.with_(lr=0.1, width=64, steps=10, seed=3, activation="relu", lr_milestones=[5, 7])
    assert e["optimizer.lr"] == 0.1 and e["model.width"] == 64 and e.steps == 10
    assert e["seed"] == 3 and e["model.activation"] == "relu"
    assert e["optimizer.lr_milestones"] == [5, 7]
    assert e["per_model.seed"] == []  # unset per-model lists read as empty


def test_constructors_agree():
    c = cw.Config(p=23, width=96)
    assert c == cw.Config.from_dict({"task": {"p": 23}, "model.width": 96})
    assert c == cw.Config.from_toml("[task]\np = 23\n[model]\nwidth = 96\n")
    assert cw.Config.from_toml(c.to_toml()) == c
    assert cw.Config() == cw.Config.preset("default")
    assert cw.Config.from_dict({"task.p": 23}, preset="blog-relu")["model.activation"] == "relu"


def test_from_file(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[model]\nwidth = 64\n")
    c = cw.Config.from_file(f, preset="blog-x2")
    assert (c.p, c.width) == (71, 64)
    f.write_text("[model]\nwidth = = 64\n")
    with pytest.raises(cw.BadFileError) as e:
        cw.Config.from_file(f)
    assert "line 2" in str(e.value) and e.value.path == str(f)
    with pytest.raises(cw.FileIOError) as e:
        cw.Config.from_file(tmp_path / "missing.toml")
    assert isinstance(e.value, OSError) and "missing.toml" in str(e.value)


def test_to_dict_and_lookups():
    c = cw.Config.preset("nanda")
    d = c.to_dict()
    assert d["task"]["p"] == 113 and d["optimizer"]["kind"] == "adamw"
    assert c["task"]["train_fraction"] == 0.3
    assert "task.p" in cw.Config.keys()
    assert set(cw.Config.preset_names()) >= {"default", "blog-x2", "blog-relu", "nanda"}
    assert "task.p" in cw.Config.key_reference()
    assert "mod 113" in repr(c)
    with pytest.raises(KeyError, match="no config key 'task.q'"):
        c["task.q"]


@pytest.mark.parametrize(
    "make, key, value",
    [
        (lambda: cw.Config.preset("blog"), "preset", "blog"),
        (lambda: cw.Config().with_(lr=-1), "optimizer.lr", "-1"),
        (lambda: cw.Config().with_(p="abc"), "task.p", '"abc"'),
        (lambda: cw.Config().with_(p=1), "task.p", "1"),
        (lambda: cw.Config().with_({"task.q": 3}), "task.q", "3"),
        (lambda: cw.Config().with_(activation="tanh"), "model.activation", '"tanh"'),
        (lambda: cw.Config().with_(device="tpu"), "device", '"tpu"'),
        (lambda: cw.Config().with_(p=2**70), "task.p", None),
        (lambda: cw.Config().with_(p=object()), "task.p", None),
        (lambda: cw.Config().with_(3), "config", "3"),
        # A dict as a value would otherwise iterate into its keys.
        (lambda: cw.Config().with_(lr_milestones={1000: 2}), "optimizer.lr_milestones", "{1000: 2}"),
        (lambda: cw.Config.from_toml("[task]\np = 0\n"), "task.p", "0"),
    ],
)
def test_bad_values_raise_config_error(make, key, value):
    with pytest.raises(cw.ConfigError) as e:
        make()
    assert isinstance(e.value, ValueError) and isinstance(e.value, cw.Error)
    assert e.value.key == key, str(e.value)
    if value is not None:
        assert e.value.value == value, str(e.value)
    assert e.value.reason and key in str(e.value)


def test_per_model_lists():
    c = cw.Config(models=2).with_({"per_model.seed": [4, 5], "per_model.lr": [0.1, 0.2]})
    assert c["per_model.seed"] == [4, 5] and c.to_dict()["per_model"]["lr"] == [0.1, 0.2]
    d = c.with_({"models": 3, "per_model.seed": [1, 2, 3], "per_model.lr": [0.1, 0.1, 0.1]})
    assert d.models == 3
    with pytest.raises(cw.ConfigError) as e:
        c.with_({"per_model.seed": [1, 2, 3]})  # 3 seeds for 2 models
    assert "seed" in e.value.key
    with pytest.raises(cw.ConfigError) as e:
        c.with_({"per_model.sed": [1, 2]})
    assert e.value.key == "per_model.sed"
    with pytest.raises(cw.ConfigError):
        c.with_({"per_model.lr": ["a", "b"]})


def test_numpy_scalars_and_lists():
    np = pytest.importorskip("numpy")
    c = cw.Config().with_(p=np.int64(29), lr=np.float32(0.25), lr_milestones=np.array([3, 4]))
    assert (c.p, c["optimizer.lr"], c["optimizer.lr_milestones"]) == (29, 0.25, [3, 4])
