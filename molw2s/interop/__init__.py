"""Adapters to other libraries (deepchem, scikit-learn); each imports its library lazily."""
