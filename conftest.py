pytest_plugins = ["tests.fakes.token_server", "tests.fakes.docker_env"]
