"""API plumbing every app's endpoints share: the error body, base views, permission shape."""
