"""The SDK edge: a lean Starlette front answering the hot SDK paths from in-process caches."""
