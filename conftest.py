"""Repository-level pytest settings: the plugin's own tests use pytester."""

pytest_plugins = ["pytester"]
