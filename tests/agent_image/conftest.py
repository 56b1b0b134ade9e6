"""Docker fixtures live in tests/fakes/docker_env.py (a plugin of the root conftest)."""
