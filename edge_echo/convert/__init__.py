"""One converter per file form (forms.py registers them); each takes a Subject: model + interface."""
