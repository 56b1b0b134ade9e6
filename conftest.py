pytest_plugins = ["tests.fakes.token_server"]
