"""Encoders: the SMILES tokenizer, MolBERT-style pretraining of a weak/strong model family,
and representations (pooled transformer embeddings, fingerprints, descriptors).

Import the submodules directly (``from molw2s.encoders.embed import embed_task``); torch and
transformers load only where used. See docs/pretraining.md.
"""
