"""The theory side of molw2s: principal kernels, the P operators, the predictors M and
PredGap_hat, their baselines (theory.md 3-5), a synthetic family on which the theory
provably works, and the random-feature simulator (section 7).

Import the submodules directly, e.g. ``from molw2s.theory.predictor import predict_w2s``.
"""
