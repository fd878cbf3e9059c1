from tests.sdk.conftest import configure, env, make_env

__all__ = ["configure", "env", "make_env"]
