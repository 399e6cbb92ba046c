"""The management REST API (Django REST framework): auth, scope, errors, endpoints, schema."""
