"""Random-feature W2S simulator (theory.md section 7): exact moments against Monte Carlo,
fits against least squares, the gradient-flow closed form against explicit integration,
the paper's two findings on a small setting, config errors and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from molw2s.analysis import random_features as rf_summary
from molw2s.config import build_model
from molw2s.errors import ConfigError
from molw2s.theory import random_features as rf


def _mc_close(samples: np.ndarray, exact: np.ndarray, z: float = 5.0) -> None:
    """Each exact value lies within ``z`` standard errors of the Monte-Carlo mean."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - exact) <= z * se + 1e-12), np.max(np.abs(mean - exact) / se)


@pytest.fixture(scope="module")
def draw() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    d = 8
    return {
        "d": d,
        "beta": rf.sample_sphere(1, d, rng)[0],
        "U1": rf.sample_sphere(6, d, rng),
        "U2": rf.sample_sphere(4, d, rng),
        "X": rf.sample_sphere(200_000, d, rng),
    }


# ------------------------------------------------------------- exact population moments


def test_arccos_kernel_closed_form_values() -> None:
    assert rf.arccos_kernel(np.array(1.0)) == pytest.approx(0.5)  # E relu(z)^2
    assert rf.arccos_kernel(np.array(0.0)) == pytest.approx(1 / (2 * np.pi))  # (E relu z)^2
    assert rf.arccos_kernel(np.array(-1.0)) == pytest.approx(0.0, abs=1e-12)  # relu(z) relu(-z) = 0


def test_feature_gram_and_target_moment_match_monte_carlo(draw: dict) -> None:
    X, U1, U2, beta = draw["X"], draw["U1"], draw["U2"], draw["beta"]
    phi1, phi2 = rf.relu_features(X, U1), rf.relu_features(X, U2)
    products = (phi1[:, :, None] * phi2[:, None, :]).reshape(len(X), -1)
    _mc_close(products, rf.feature_gram(U1, U2).ravel())
    _mc_close(phi1 * (X @ beta)[:, None], rf.target_moment(U1, beta))
    _mc_close((X @ beta)[:, None] ** 2, np.array([1.0 / draw["d"]]))  # E f*^2 = 1/d


def test_feature_gram_is_the_wide_limit_of_the_features() -> None:
    """phi(x) . phi(x') -> kappa(x . x') as M grows: the scaling sqrt(d/M) is the right one."""
    rng = np.random.default_rng(0)
    X = rf.sample_sphere(5, 6, rng)
    U = rf.sample_sphere(200_000, 6, rng)
    phi = rf.relu_features(X, U)
    np.testing.assert_allclose(phi @ phi.T, rf.arccos_kernel(X @ X.T), atol=5e-3)


def test_feature_gram_rejects_non_unit_weights() -> None:
    with pytest.raises(ValueError, match="unit-norm"):
        rf.feature_gram(2 * np.eye(3), np.eye(3))


# ------------------------------------------------------------------ teacher fit


def test_least_squares_equals_lstsq_on_a_sample() -> None:
    rng = np.random.default_rng(1)
    phi, y = rng.standard_normal((300, 12)), rng.standard_normal(300)
    gram, moment = phi.T @ phi / 300, phi.T @ y / 300
    np.testing.assert_allclose(rf.least_squares(gram, moment), np.linalg.lstsq(phi, y, rcond=None)[0], rtol=1e-9)
    ridge = 0.3
    np.testing.assert_allclose(
        rf.least_squares(gram, moment, ridge), np.linalg.solve(gram + ridge * np.eye(12), moment), rtol=1e-9
    )


def test_exact_teacher_is_the_population_optimum(draw: dict) -> None:
    """The exact-moment fit beats the least-squares fit on a Monte-Carlo sample, whose
    population loss is only slightly larger; its gradient vanishes; the loss formula
    matches a Monte-Carlo estimate on a fresh sample."""
    X, U, beta, d = draw["X"], draw["U1"], draw["beta"], draw["d"]
    gram, moment = rf.feature_gram(U, U), rf.target_moment(U, beta)
    a = rf.least_squares(gram, moment, ridge=1e-12)
    loss = rf.quadratic_loss(a, gram, moment, 1.0 / d)
    np.testing.assert_allclose(gram @ a, moment, atol=1e-10)

    phi_train = rf.relu_features(X[:20_000], U)
    a_mc = np.linalg.lstsq(phi_train, X[:20_000] @ beta, rcond=None)[0]
    loss_mc_fit = rf.quadratic_loss(a_mc, gram, moment, 1.0 / d)
    assert loss < loss_mc_fit < loss * 1.01

    fresh = X[20_000:]
    _mc_close((rf.relu_features(fresh, U) @ a - fresh @ beta)[:, None] ** 2, np.array([loss]))


# ----------------------------------------------------------- student gradient flow


def _rk4(gram: np.ndarray, b: np.ndarray, t: float, steps: int) -> np.ndarray:
    """Explicit RK4 integration of da/dt = -2 (gram a - b) from a(0) = 0."""
    h, a = t / steps, np.zeros_like(b)
    f = lambda v: -2.0 * (gram @ v - b)  # noqa: E731
    for _ in range(steps):
        k1 = f(a)
        k2 = f(a + h / 2 * k1)
        k3 = f(a + h / 2 * k2)
        k4 = f(a + h * k3)
        a = a + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return a


def _euler(gram: np.ndarray, b: np.ndarray, t: float, steps: int) -> np.ndarray:
    h, a = t / steps, np.zeros_like(b)
    for _ in range(steps):
        a = a - 2.0 * h * (gram @ a - b)
    return a


@pytest.fixture(scope="module")
def singular_problem() -> tuple[np.ndarray, np.ndarray]:
    """A rank-deficient Gram (8 features, 5 samples) and a b partly outside its range, so
    that the mu = 0 limit of the closed form (a grows like 2 t b) is exercised."""
    rng = np.random.default_rng(3)
    phi = rng.standard_normal((5, 8))
    return phi.T @ phi / 5, rng.standard_normal(8)


@pytest.mark.parametrize("t", [0.0, 0.4, 3.0])
def test_gradient_flow_closed_form_matches_rk4(singular_problem: tuple, t: float) -> None:
    gram, b = singular_problem
    mu, V = rf.gram_eigenbasis(gram)
    np.testing.assert_allclose(rf.gradient_flow_weights(mu, V, b, t), _rk4(gram, b, t, 4000), rtol=1e-9, atol=1e-11)


def test_gradient_flow_closed_form_is_the_euler_limit(singular_problem: tuple) -> None:
    """Explicit Euler converges to the closed form at first order in the step."""
    gram, b = singular_problem
    mu, V = rf.gram_eigenbasis(gram)
    exact = rf.gradient_flow_weights(mu, V, b, 2.0)
    errors = [np.linalg.norm(_euler(gram, b, 2.0, n) - exact) for n in (2000, 4000, 8000)]
    assert errors[2] < 2e-3 * np.linalg.norm(exact)
    np.testing.assert_allclose(np.array(errors[:2]) / np.array(errors[1:]), 2.0, rtol=0.02)


def test_flow_losses_match_the_weights_and_training_loss_decreases(draw: dict) -> None:
    U_s, U_t, beta, d = draw["U1"], draw["U2"], draw["beta"], draw["d"]
    gram = rf.feature_gram(U_s, U_s)
    mu, V = rf.gram_eigenbasis(gram)
    a_t = rf.least_squares(rf.feature_gram(U_t, U_t), rf.target_moment(U_t, beta))
    b = rf.feature_gram(U_s, U_t) @ a_t  # E phi_s f_TE
    f_te_sq = float(a_t @ rf.feature_gram(U_t, U_t) @ a_t)
    c = rf.target_moment(U_s, beta)
    times = np.concatenate([[0.0], np.geomspace(1e-2, 1e7, 200)])

    err = rf.flow_losses(mu, V, b, c, 1.0 / d, times)
    for i in (0, 57, 150, 200):
        a = rf.gradient_flow_weights(mu, V, b, times[i])
        assert err[i] == pytest.approx(rf.quadratic_loss(a, gram, c, 1.0 / d), rel=1e-9, abs=1e-15)
    assert err[0] == pytest.approx(1.0 / d)  # a(0) = 0

    train = rf.flow_losses(mu, V, b, b, f_te_sq, times)
    assert np.all(np.diff(train) <= 1e-15)
    a_inf = rf.least_squares(gram, b)  # the flow ends at the least-squares fit of the teacher
    assert train[-1] == pytest.approx(rf.quadratic_loss(a_inf, gram, b, f_te_sq), abs=1e-12)


def test_negative_time_is_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        rf.flow_filter(np.ones(3), np.array([1.0, -0.5]))


# ------------------------------------------------------------- the simulation itself


SMALL = {
    "d": 32,
    "m_student": 1024,
    "m_teachers": [16, 32, 64, 128],
    "repeats": 1,
    "time_grid": {"start": 1.0, "stop": 1e5, "points": 41},
    "report_times": [100.0, 1000.0],
    "mc_check_samples": 20000,
    "predictor_samples": 300,
}


@pytest.fixture(scope="module")
def small_repeat() -> rf.RepeatResult:
    return rf.simulate_repeat(build_model(rf.RandomFeaturesConfig, SMALL), 0, with_predictor=False)


def test_weak_to_strong_findings_on_a_small_setting(small_repeat: rf.RepeatResult) -> None:
    """(a) with the best t the student beats every teacher, more so for wider teachers;
    (b) L_ST is polynomially smaller than L_TE (log-log slope > 1); without early
    stopping the student gains much less (it converges to its fit of the teacher)."""
    r = small_repeat
    ratio = np.array(r.best_student_loss) / np.array(r.teacher_loss)
    assert np.all(ratio < 1)
    assert ratio[-1] < ratio[0] and ratio[-1] < 0.5
    assert rf_summary.loglog_slope(r.teacher_loss, r.best_student_loss) > 1.2
    late = np.array([curve[-1] for curve in r.student_loss]) / np.array(r.teacher_loss)
    assert np.all(late > ratio) and late[-1] > 2 * ratio[-1]


def test_exact_losses_agree_with_the_monte_carlo_check(small_repeat: rf.RepeatResult) -> None:
    r = small_repeat
    for exact, mc, se in [
        (r.teacher_loss, r.mc_teacher_loss, r.mc_teacher_loss_se),
        (r.best_student_loss, r.mc_best_student_loss, r.mc_best_student_loss_se),
    ]:
        assert np.all(np.abs(np.array(exact) - np.array(mc)) < 5 * np.array(se))


def test_simulation_is_deterministic_under_the_seed(small_repeat: rf.RepeatResult) -> None:
    cfg = build_model(rf.RandomFeaturesConfig, {**SMALL, "m_teachers": [16, 32], "m_student": 256})
    first, again = (rf.simulate_repeat(cfg, 0, with_predictor=False) for _ in range(2))
    assert first.to_dict() == again.to_dict()
    other_repeat = rf.simulate_repeat(cfg, 1, with_predictor=False)
    other_seed = rf.simulate_repeat(cfg.model_copy(update={"seed": 5}), 0, with_predictor=False)
    assert other_repeat.teacher_loss != first.teacher_loss
    assert other_seed.teacher_loss != first.teacher_loss


def test_summary_aggregates_repeats(small_repeat: rf.RepeatResult) -> None:
    other = rf.RepeatResult.from_dict(json.loads(json.dumps(small_repeat.to_dict())))
    other.best_student_loss = [2 * v for v in other.best_student_loss]
    s = rf_summary.summarize([small_repeat, other])
    ratio = np.array(small_repeat.best_student_loss) / np.array(small_repeat.teacher_loss)
    np.testing.assert_allclose(s["ratio_best_mean"], 1.5 * ratio)
    np.testing.assert_allclose(s["ratio_best_se"], 0.5 * ratio)  # std of {r, 2r} / sqrt(2)
    # doubling L_ST of one repeat moves the points but not the slope of each repeat
    assert s["finding_b"]["slope_best_per_repeat"][0] == pytest.approx(s["finding_b"]["slope_best_per_repeat"][1])


def test_loglog_slope_recovers_a_power_law() -> None:
    x = np.geomspace(1e-4, 1e-1, 9)
    assert rf_summary.loglog_slope(x, 3.0 * x**1.7) == pytest.approx(1.7)
    with pytest.raises(ValueError, match="positive"):
        rf_summary.loglog_slope(x, -x)


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"m_student": 64, "m_teachers": [16, 128]}, "exceed the student width"),
        ({"report_times": [10.0, -1.0]}, "must be > 0"),
        ({"d": 1}, "at least 2"),
        ({"predictor_samples": 200}, "too small for teacher width 256"),
        ({"time_grid": {"start": 10.0, "stop": 1.0}}, "must exceed"),
        ({"m_teachers": [16, 16]}, "distinct"),
        ({"m_studnet": 10}, "did you mean 'm_student'"),
    ],
)
def test_bad_settings_give_clear_errors(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(rf.RandomFeaturesConfig, override)


def test_sphere_needs_two_dimensions() -> None:
    with pytest.raises(ValueError, match="d >= 2"):
        rf.sample_sphere(3, 1, np.random.default_rng(0))


def test_paper_flag_imposes_the_paper_settings(tmp_path) -> None:
    from molw2s.cli.simulate import _build_config

    path = tmp_path / "c.yaml"
    path.write_text("m_student: 512\nrepeats: 2\n")
    cfg = _build_config(rf.RandomFeaturesConfig, path, True, ["seed=3"])
    assert (cfg.d, cfg.m_student, cfg.m_teachers) == (32, 16384, [16, 32, 64, 128, 256])
    assert (cfg.repeats, cfg.seed) == (2, 3)


def test_cli_reports_bad_settings_without_traceback() -> None:
    from molw2s.cli import app

    result = CliRunner().invoke(app, ["simulate", "random-features", "m_student=64", "m_teachers=[16,128]"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "exceed the student width" in str(result.exception)


# ------------------------------------------------------------- predictor and CLI


def test_with_ridge_equals_a_fresh_operator() -> None:
    from molw2s.theory.principal import principal_operator

    rng = np.random.default_rng(2)
    H = rf.relu_features(rf.sample_sphere(80, 8, rng), rf.sample_sphere(300, 8, rng))
    fresh = principal_operator(H, 0.01)
    reused = rf.with_ridge(principal_operator(H, 0.0), 0.01)
    assert (reused.k, reused.beta) == (fresh.k, fresh.beta)
    np.testing.assert_allclose(reused.dense(), fresh.dense(), atol=1e-12)


TINY = [
    "m_student=128",
    "m_teachers=[8,16]",
    "repeats=2",
    "predictor_samples=64",
    "mc_check_samples=500",
    "time_grid.points=11",
    "time_grid.stop=1e4",
    "report_times=[100,1000]",
]


def test_cli_writes_results_and_resumes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from molw2s.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["simulate", "random-features", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["repeats"] == 2 and summary["m_teachers"] == [8, 16]
    assert len(summary["predictor"]["M_mean"]) == 2  # one row per report time
    assert all(0 <= m <= 1 + 1e-9 for row in summary["predictor"]["M_mean"] for m in row)
    for name in ("ratio_vs_m_te", "student_vs_teacher_loss", "loss_curves", "predictor"):
        assert (out / f"{name}.png").stat().st_size > 1000
    rows = (out / "losses.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 and rows[0].startswith("repeat,m_te,L_TE")

    # a rerun reuses the finished repeats; asking for one more computes only that one
    calls: list[int] = []
    real = rf.simulate_repeat
    monkeypatch.setattr(rf, "simulate_repeat", lambda cfg, r, **kw: calls.append(r) or real(cfg, r, **kw))
    more = [*TINY[:2], "repeats=3", *TINY[3:]]
    again = CliRunner().invoke(app, ["simulate", "random-features", "--out", str(out), *more])
    assert again.exit_code == 0, again.output
    assert calls == [2]
    assert json.loads((out / "summary.json").read_text())["repeats"] == 3


def test_cli_refuses_an_out_path_that_is_a_file(tmp_path) -> None:
    from molw2s.cli import app

    target = tmp_path / "taken"
    target.write_text("")
    result = CliRunner().invoke(app, ["simulate", "random-features", "--out", str(target), *TINY])
    assert isinstance(result.exception, ConfigError) and "not a directory" in str(result.exception)
