"""Encoders: what they are and how they are used. The SMILES tokenizer, the MolBERT-style
model and its files, pooled embeddings, and fingerprint / descriptor encoders behind the
same interface. How they are trained lives in :mod:`molw2s.pretraining`.

Import the submodules directly (``from molw2s.encoders.embed import embed_task``); torch and
transformers load only where used. See docs/pretraining.md.
"""
