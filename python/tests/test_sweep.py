"""clockwork.Sweep: a sweep run from Python equals the `sweep` binary's, row for row and
byte for byte; bad input raises the binary's errors; the dry-run plan; an interrupted
sweep resumes without retraining finished batches; shards merge into the full table."""

import _thread
import math
import subprocess
import threading
import time

import pytest

import clockwork as cw

# 4 models (regularizer strength × 2 seeds) of a+b mod 11 in 2 batches of 2; one shape group.
TINY = """\
name = "tiny"
batch_max = 2
[base]
preset = "default"
[base.set]
"task.p" = 11
"model.width" = 16
"task.train_fraction" = 0.6
"train.steps" = 60
"train.eval_every" = 20
"train.checkpoint_every" = 60
"train.spectra_every" = 0
"optimizer.lr_milestones" = []
[axes]
"train.reg_strength" = [0.0, 0.001]
seed = { seeds = 2 }
"""

TINY_DICT = {
    "name": "tiny",
    "batch_max": 2,
    "base": {
        "preset": "default",
        "set": {
            "task.p": 11,
            "model.width": 16,
            "task.train_fraction": 0.6,
            "train.steps": 60,
            "train.eval_every": 20,
            "train.checkpoint_every": 60,
            "train.spectra_every": 0,
            "optimizer.lr_milestones": [],
        },
    },
    "axes": {"train.reg_strength": [0.0, 0.001], "seed": {"seeds": 2}},
}

TABLES = ["results.csv", "results.jsonl", "histories.jsonl"]


def run_binary(sweep_bin, *args):
    return subprocess.run([str(sweep_bin), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def binary_dir(tiny_file, sweep_bin, tmp_path_factory):
    """The tiny sweep trained by the `sweep` binary."""
    out = tmp_path_factory.mktemp("bin") / "tiny"
    r = run_binary(sweep_bin, tiny_file, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def test_python_run_equals_sweep_binary(tiny_file, binary_dir, tmp_path):
    sw = cw.Sweep(tiny_file)
    assert (sw.name, sw.models, sw.keys) == ("tiny", 4, ["seed", "train.reg_strength"])
    report = sw.run(out=tmp_path / "py")
    assert report["status"] == "completed"
    assert (report["trained"], report["skipped"], report["models"]) == (2, 0, 4)
    assert str(tmp_path / "py" / "results.csv") in report["written"]
    for name in TABLES:  # the same bytes: same models, same bits, same formatting
        assert (tmp_path / "py" / name).read_bytes() == (binary_dir / name).read_bytes(), name

    df = cw.sweep_results(tmp_path / "py")
    ref = cw.sweep_results(binary_dir)
    assert df.equals(ref)
    assert list(df["model"]) == [0, 1, 2, 3]
    assert list(df["train.reg_strength"]) == [0.0, 0.0, 0.001, 0.001]
    assert list(df["seed"]) == [0, 1, 0, 1]
    # The frame holds the CSV's columns and numbers, row for row.
    pd = pytest.importorskip("pandas")
    csv = pd.read_csv(binary_dir / "results.csv")
    assert list(df.columns) == list(csv.columns)
    for col in csv.columns:
        if col == "freqs_used":
            expect = [[] if isinstance(x, float) else [int(k) for k in str(x).split()] for x in csv[col]]
            assert list(df[col]) == expect
        elif csv[col].dtype.kind in "if":
            assert df[col].astype(float).equals(csv[col].astype(float)), col
        else:
            assert list(df[col].astype(str)) == list(csv[col].astype(str)), col
    assert set(df["category"]) <= {"generalizes", "memorizes", "fails", "diverged"}

    cols = cw.sweep_results(tmp_path / "py", as_frame=False)
    assert cols["model"] == [0, 1, 2, 3] and isinstance(cols["freqs_used"][0], list)
    hist = cw.sweep_histories(tmp_path / "py")
    assert len(hist) == 4 * 4  # steps 0, 20, 40, 60 of every model
    assert list(hist.columns[:2]) == ["model", "step"]
    assert list(hist[hist["model"] == 2]["step"]) == [0, 20, 40, 60]
    last = hist[hist["step"] == 60].set_index("model")["train_acc"]
    assert list(last) == list(df["final_train_acc"])

    status = cw.sweep_status(tmp_path / "py")
    assert status["finished"] and status["batches_done"] == 2 and status["shard"] == "0/1"
    # Running again trains nothing.
    again = sw.run(out=tmp_path / "py")
    assert (again["trained"], again["skipped"]) == (0, 2)
    # `sweep report --explore`: the page added, the tables written again unchanged.
    rep = cw.report_sweep(tmp_path / "py", explore=True)
    assert rep["models"] == 4 and str(tmp_path / "py" / "explore.html") in rep["written"]
    assert (tmp_path / "py" / "explore.html").stat().st_size > 0
    for name in TABLES:
        assert (tmp_path / "py" / name).read_bytes() == (binary_dir / name).read_bytes(), name


def test_text_and_dict_give_the_same_sweep(tiny_file):
    a = cw.Sweep(tiny_file)
    b = cw.Sweep.from_toml(TINY)
    c = cw.Sweep.from_dict(TINY_DICT)
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert a.points() == c.points()
    assert a.points()[3] == {"model": 3, "group": 0, "batch": 1, "train.reg_strength": 0.001, "seed": 1}
    cfg = c.config(3)
    assert (cfg.p, cfg.width, cfg.steps, cfg["seed"], cfg["train.reg_strength"]) == (11, 16, 60, 1, 0.001)
    assert "tiny" in repr(c) and "4 models" in repr(c)
    # Without a name: the given one, else "sweep".
    nameless = {k: v for k, v in TINY_DICT.items() if k != "name"}
    assert cw.Sweep.from_dict(nameless).name == "sweep"
    assert cw.Sweep.from_dict(nameless, name="wd").name == "wd"


def binary_error(sweep_bin, tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    r = run_binary(sweep_bin, path, "--dry-run")
    assert r.returncode == 2, r.stdout + r.stderr
    return r.stderr.strip().removeprefix("error: ")


@pytest.mark.parametrize(
    "text, key, value",
    [
        (TINY + '"model.width" = []\n', "axes.model.width", "[]"),
        (TINY + '"model.widht" = [8]\n', "model.widht", None),
        (TINY + "models = [1, 2]\n", "axes.models", "models"),
        (TINY.replace("batch_max = 2", "batch_max = 0"), "batch_max", "0"),
        (TINY + '"optimizer.lr" = { logspace = [0.0, 1.0, 3] }\n', "axes.optimizer.lr.logspace", None),
        (TINY + '"task.op" = ["div"]\n"task.p" = [9]\n', "task.p", "9"),
        (TINY + '[[diagrams]]\nx = "seed"\ny = "task.p"\n', "diagrams[0].y", "task.p"),
        (TINY + "[axes.oops\n", "sweep file", "TOML"),
    ],
)
def test_bad_sweeps_raise_the_binary_errors(sweep_bin, tmp_path, text, key, value):
    with pytest.raises(cw.ConfigError) as e:
        cw.Sweep.from_toml(text)
    assert e.value.key == key, str(e.value)
    if value is not None:
        assert e.value.value == value, str(e.value)
    assert str(e.value) == binary_error(sweep_bin, tmp_path, text)
    assert isinstance(e.value, ValueError)


def test_bad_python_arguments():
    with pytest.raises(cw.ConfigError) as e:
        cw.Sweep.from_dict({**TINY_DICT, "axes": {"seed": [0, None]}})
    assert e.value.key == "sweep.axes.seed[1]" and e.value.value == "None"
    with pytest.raises(cw.ConfigError) as e:
        cw.Sweep.from_dict({**TINY_DICT, "axes": {3: [1]}})
    assert e.value.key == "sweep.axes" and e.value.value == "3"
    with pytest.raises(cw.ConfigError) as e:
        cw.Sweep.from_dict([("name", "x")])
    assert e.value.key == "sweep"
    with pytest.raises(cw.ConfigError) as e:
        cw.Sweep.from_dict({**TINY_DICT, "axis": {"seed": [0]}})
    assert e.value.key == "sweep file" and "axis" in e.value.reason
    sw = cw.Sweep.from_dict(TINY_DICT)
    for shard in ["2/2", "a/b", (1, 0), 3]:
        with pytest.raises(cw.ConfigError) as e:
            sw.plan(shard=shard, estimate=False)
        assert e.value.key == "shard"
    with pytest.raises(cw.ConfigError) as e:
        sw.config(4)
    assert e.value.key == "model" and e.value.value == "4"
    with pytest.raises(cw.FileIOError):
        cw.Sweep("/nonexistent/sweep.toml")


def test_reading_what_is_not_a_finished_sweep(tmp_path):
    with pytest.raises(cw.BadFileError) as e:
        cw.sweep_results(tmp_path)
    assert "not a sweep directory" in e.value.reason
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(cw.BadFileError) as e:
        cw.Sweep.from_dict(TINY_DICT).run(out=tmp_path / "x")
    assert "not empty" in e.value.reason


def test_plan_is_the_dry_run(tiny_file, sweep_bin):
    sw = cw.Sweep(tiny_file)
    plan = sw.plan(estimate=False)
    assert plan["models"] == 4 and plan["batches"] == 2 and plan["batch_max"] == 2
    assert plan["axes"] == [["seed", 2], ["train.reg_strength", 2]]
    assert len(plan["groups"]) == 1 and plan["groups"][0]["models"] == 4
    assert plan["groups"][0]["batches"] == 2 and "mod 11" in plan["groups"][0]["describe"]
    assert (plan["shard"], plan["shard_batches"], plan["explicit_points"]) == ("0/1", 2, 0)
    assert plan["estimates"] == [] and plan["estimated_s"] is None
    assert sw.plan(shard=(1, 2), estimate=False)["shard_batches"] == 1
    timed = sw.plan(shard="1/2")
    (g,) = timed["estimates"]
    assert (g["group"], g["models"], g["batches"]) == (0, 2, 1)
    assert g["step_s"] > 0 and g["total_s"] >= 60 * g["step_s"]
    assert timed["estimated_s"] == g["total_s"]
    r = run_binary(sweep_bin, tiny_file, "--dry-run")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first == (
        f"sweep tiny: 4 models, 1 shape group(s), 2 batch(es) of at most 2 (fingerprint {sw.fingerprint})"
    )


# Two shape groups: batch 0 (60 steps) is quick, batch 1 (30k steps, a few seconds) is
# interrupted midway.
TWO_GROUPS = (
    TINY.replace('name = "tiny"', 'name = "two"')
    .replace('"train.steps" = 60\n', "")
    .replace('"train.eval_every" = 20\n', '"train.eval_every" = 30\n')
    .replace('"train.checkpoint_every" = 60\n', '"train.checkpoint_every" = 15000\n')
    .replace('"train.reg_strength" = [0.0, 0.001]\n', "")
    .replace("[axes]", '[[points]]\n"train.steps" = 60\n[[points]]\n"train.steps" = 30000\n[axes]')
)


def test_interrupt_then_resume_keeps_finished_batches(tmp_path, sweep_bin):
    sw = cw.Sweep.from_toml(TWO_GROUPS)
    assert [b["batch"] for b in sw.points()] == [0, 0, 1, 1]
    out = tmp_path / "two"
    first = out / "batches" / "b00000" / "result.json"

    def interrupt_after_first_batch():
        deadline = time.monotonic() + 120
        while not first.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        _thread.interrupt_main()  # what Ctrl-C does

    watcher = threading.Thread(target=interrupt_after_first_batch)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        sw.run(out=out)
    watcher.join()
    status = cw.sweep_status(out)
    assert (status["batches_done"], status["shard_batches"], status["finished"]) == (1, 2, False)
    with pytest.raises(cw.BadFileError) as e:
        cw.sweep_results(out)
    assert "1 of 2 batch(es) done" in str(e.value)
    # The interrupted batch left a checkpoint to continue from.
    ckpts = list((out / "batches" / "b00001").rglob("step-*.safetensors"))
    assert ckpts, "no checkpoint of the interrupted batch"
    kept = (first.read_bytes(), first.stat().st_mtime_ns)

    report = sw.run(out=out)
    assert (report["status"], report["trained"], report["skipped"]) == ("completed", 1, 1)
    assert (first.read_bytes(), first.stat().st_mtime_ns) == kept  # not retrained
    # And the resumed sweep is the uninterrupted one, bit for bit.
    spec = tmp_path / "two.toml"
    spec.write_text(TWO_GROUPS)
    r = run_binary(sweep_bin, spec, "--out", tmp_path / "ref", "--quiet")
    assert r.returncode == 0, r.stderr
    for name in TABLES:
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    df = cw.sweep_results(out)
    assert list(df["train.steps"]) == [60, 60, 30000, 30000]


def test_shards_merge_into_the_full_table(tiny_file, binary_dir, tmp_path):
    sw = cw.Sweep(tiny_file)
    dirs = []
    for i in range(2):
        r = sw.run(out=tmp_path / f"s{i}", shard=f"{i}/2")
        assert (r["trained"], r["models"]) == (1, 2)
        dirs.append(tmp_path / f"s{i}")
    assert cw.sweep_status(dirs[1])["shard"] == "1/2"
    assert list(cw.sweep_results(dirs[1])["model"]) == [2, 3]
    with pytest.raises(cw.ConfigError) as e:
        cw.merge_sweeps(dirs[:1], tmp_path / "m")
    assert e.value.key == "merge" and e.value.value == "1/2"
    m = cw.merge_sweeps(dirs, tmp_path / "m", explore=True)
    assert m["models"] == 4 and str(tmp_path / "m" / "explore.html") in m["written"]
    for name in TABLES:
        assert (tmp_path / "m" / name).read_bytes() == (binary_dir / name).read_bytes(), name
    status = cw.sweep_status(tmp_path / "m")
    assert status["kind"] == "merged" and status["finished"] and status["name"] == "tiny"
    assert cw.sweep_results(tmp_path / "m").equals(cw.sweep_results(binary_dir))
    assert math.isfinite(cw.sweep_results(tmp_path / "m")["final_train_loss"].sum())
