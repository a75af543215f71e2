# Fixtures shared by every app live in netfleet/testing/.
pytest_plugins = ["netfleet.testing.fixtures"]
