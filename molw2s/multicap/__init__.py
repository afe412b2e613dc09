"""Multi-capability weak-to-strong generalisation with data selection and two-stage
training (theory.md section 8, after Zhou, Shen & Cheng, ICLR 2025), on frozen
representations or with the strong encoder finetuned. See docs/multicap.md."""
