"""Finetuning encoders end to end on a regression task (and the frozen-feature baselines).

Sits in the pretraining layer: it trains encoders; :mod:`molw2s.experiment.finetune`
runs it over tasks and split seeds, and the W2S sweep uses it for a finetuned student.
"""
