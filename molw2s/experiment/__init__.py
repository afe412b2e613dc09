"""The end-to-end experiment: pretrain (or reuse) a family, embed, sweep W2S cells,
compute predictors, evaluate. ``molw2s run CONFIG`` drives it."""
