"""Pretraining: how encoders are made. Corpus preparation, masking, the trainer, family
runs, training checkpoints and data-parallel launch.

Import the submodules directly (``from molw2s.pretraining.family import pretrain_family``);
torch and transformers load only where used. See docs/pretraining.md.
"""
