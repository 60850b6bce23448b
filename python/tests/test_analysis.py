"""The analysis functions on arrays and run directories, against the exact construction
(a known answer: γ = γ*, every neuron a pure sinusoid with θu + θv = θw)."""

import json
import math

import numpy as np
import pytest

import clockwork as cw

P = 23


@pytest.fixture(scope="module")
def exact():
    return cw.construct(P)


def test_construct_shapes_and_gamma_star(exact):
    U, V, W = exact
    m = 8 * (P - 1)
    assert U.shape == (m, P) and V.shape == (m, P) and W.shape == (P, m)
    assert cw.gamma_star(P) == pytest.approx(math.sqrt(2 / 27) / (math.sqrt(P) * (P - 1)), rel=1e-15)
    assert cw.gamma_star(P, activation="relu") is None
    assert cw.gamma_star(P, op="mul") is None


def test_margin_of_the_construction_is_gamma_star(exact):
    r = cw.margin(*exact)
    assert r["accuracy"] == 1.0 and r["pairs"] == "all"
    assert r["gamma"] == pytest.approx(cw.gamma_star(P), rel=1e-9)
    assert r["ratio"] == pytest.approx(1.0, rel=1e-9)
    assert r["gamma_star"] == cw.gamma_star(P)
    r = cw.margin(*exact, activation="relu")
    assert r["gamma_star"] is None and r["ratio"] is None


def test_spectra_parseval_and_shape(exact):
    U, V, W = exact
    s = cw.spectra(U, V, W)
    m, nf = U.shape[0], P // 2 + 1
    assert s["power"].shape == (m, 3, nf) and s["phase"].shape == (m, 3, nf)
    assert (s["p"], s["n_freq"]) == (P, nf)
    # Parseval: each vector's power sums to its squared norm.
    assert np.allclose(s["power"][:, 0].sum(1), (U**2).sum(1), rtol=1e-12)
    assert np.allclose(s["power"][:, 2].sum(1), (W**2).sum(0), rtol=1e-12)


def test_planted_sinusoid_recovered():
    m, k, theta = 3, 4, 0.7
    a = np.arange(P)
    U = np.tile(np.cos(2 * np.pi * k * a / P + theta), (m, 1))
    V = np.tile(np.cos(2 * np.pi * k * a / P - 0.2), (m, 1))
    W = np.tile(np.cos(2 * np.pi * k * a / P + 0.5), (m, 1)).T
    freq, frac = cw.dominant_frequencies(U, V, W)
    assert list(freq) == [k] * m and np.allclose(frac, 1.0)
    tu, tv, tw = cw.phases(U, V, W)
    assert np.allclose(tu, theta) and np.allclose(tv, -0.2) and np.allclose(tw, 0.5)
    tu1, _, _ = cw.phases(U, V, W, freq=k)
    assert np.allclose(tu1, theta)
    tu2, _, _ = cw.phases(U, V, W, freq=[k, k, k])
    assert np.allclose(tu2, theta)


def test_features_and_summary_of_the_construction(exact):
    f = cw.neuron_features(*exact)
    m = exact[0].shape[0]
    assert len(f["freq"]) == m and all(f["sinusoidal"]) and all(f["shared_freq"])
    assert max(abs(r) for r in f["residual"]) < 1e-9
    freq, _ = cw.dominant_frequencies(*exact)
    assert list(freq) == f["freq"]
    assert np.bincount(freq, minlength=P // 2 + 1)[1:].tolist() == [16] * (P // 2)
    tu, tv, tw = cw.phases(*exact)
    assert np.allclose(tu, f["theta_u"]) and np.allclose(tw, f["theta_w"])
    s = cw.frequency_summary(*exact)
    assert s["freqs_used"] == list(range(1, P // 2 + 1)) and s["freqs_missing"] == []
    assert s["sinusoidal_share"] == 1.0
    lo, hi = s["norm_share_range"]
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


def test_features_as_frame(exact):
    pd = pytest.importorskip("pandas")
    df = cw.neuron_features(*exact, as_frame=True)
    assert isinstance(df, pd.DataFrame) and len(df) == exact[0].shape[0]
    assert df["sinusoidal"].all()


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda U, V, W: cw.spectra(U[:, :5], V, W), cw.ShapeError),
        (lambda U, V, W: cw.spectra(U, V, W[:, :5]), cw.ShapeError),
        (lambda U, V, W: cw.spectra(U[0], V, W), cw.ShapeError),
        (lambda U, V, W: cw.spectra(U, V, W[:5]), cw.ShapeError),  # n_out != p
        (lambda U, V, W: cw.spectra("u", V, W), TypeError),
        (lambda U, V, W: cw.spectra(U, V, None), TypeError),
        (lambda U, V, W: cw.spectra(U * np.nan, V, W), cw.ConfigError),
        (lambda U, V, W: cw.spectra(U[:0], V[:0], W[:, :0]), cw.ShapeError),
        (lambda U, V, W: cw.neuron_features(U, V, W, threshold=0), cw.ConfigError),
        (lambda U, V, W: cw.frequency_summary(U, V, W, threshold=1.5), cw.ConfigError),
        (lambda U, V, W: cw.phases(U, V, W, freq=P), cw.ConfigError),
        (lambda U, V, W: cw.phases(U, V, W, freq=[1, 2]), cw.ShapeError),
        (lambda U, V, W: cw.phases(U, V, W, freq="x"), cw.ConfigError),
        (lambda U, V, W: cw.margin(U, V, W, op="pow"), cw.ConfigError),
        (lambda U, V, W: cw.margin(U, V, W, activation="tanh"), cw.ConfigError),
        (lambda U, V, W: cw.margin(U, V, W[:5]), cw.ShapeError),
        (lambda U, V, W: cw.gamma_star(1), cw.ConfigError),
        (lambda U, V, W: cw.gamma_star(-1), OverflowError),
        (lambda U, V, W: cw.construct(24), cw.ConfigError),
        (lambda U, V, W: cw.construct(1), cw.ConfigError),
    ],
)
def test_bad_input_raises(exact, call, exc):
    with pytest.raises(exc) as e:
        call(*exact)
    assert str(e.value)


def test_run_directory_analysis(tmp_path, exact):
    run = tmp_path / "maxmargin"
    cw.write_construction(P, run)
    with pytest.raises(cw.Error):
        cw.write_construction(P, run)  # exists: refused without replace
    cw.write_construction(P, run, replace=True)
    s = cw.summary(run)
    model = s["models"][0]
    assert s["p"] == P and model["margin"]["ratio"] == pytest.approx(1.0, rel=1e-9)
    assert model["frequencies"]["freqs_used"] == list(range(1, P // 2 + 1))
    json.dumps(s)  # plain Python values
    a = cw.analyze(run, as_frame=False)
    assert set(a) == {"summary", "neurons", "frequencies", "checkpoints", "timeline"}
    assert len(a["neurons"]["neuron"]) == exact[0].shape[0] and all(a["neurons"]["sinusoidal"])
    assert a["frequencies"]["neurons"] == [16] * (P // 2)
    assert a["checkpoints"]["step"] == [0] and a["checkpoints"]["gamma_ratio"][0] == pytest.approx(1.0)
    ck = cw.load_checkpoint(run / "checkpoints" / "step-00000000.safetensors")
    assert np.array_equal(ck["u"][0], exact[0]) and np.array_equal(ck["w"][0], exact[2])
    assert ck["config"].p == P and ck["step"] == 0


def test_analysis_tables_as_dataframes(tmp_path):
    pd = pytest.importorskip("pandas")
    run = tmp_path / "mm"
    cw.write_construction(P, run)
    a = cw.analyze(run)
    assert isinstance(a["neurons"], pd.DataFrame) and a["neurons"]["sinusoidal"].all()
    assert list(a["frequencies"]["freq"]) == list(range(1, P // 2 + 1))


def test_run_directory_errors(tmp_path):
    with pytest.raises(cw.Error):
        cw.analyze(tmp_path / "nothing")
    with pytest.raises(cw.ConfigError):
        cw.analyze(tmp_path, threshold=2)
    with pytest.raises(cw.FileIOError):
        cw.load_checkpoint(tmp_path / "none.safetensors")


def test_save_weights_round_trip(tmp_path, exact):
    cfg = cw.Config(p=P, width=exact[0].shape[0], dtype="f64")
    path = tmp_path / "w.safetensors"
    cw.save_weights(path, cfg, *exact, step=12)
    ck = cw.load_checkpoint(path)
    assert ck["step"] == 12 and all(np.array_equal(ck[k][0], x) for k, x in zip("uvw", exact))
    with pytest.raises(cw.ShapeError):
        cw.save_weights(path, cfg.with_(width=8), *exact)
    with pytest.raises(cw.ShapeError):
        cw.save_weights(path, cfg.with_(models=2), *exact)
    with pytest.raises(cw.BadFileError, match="weights only"):
        cw.Trainer.from_checkpoint(path)  # not resumable
