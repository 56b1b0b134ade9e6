"""`check --deploy` with the README's production values, and `check` on both task engines."""

import pytest

from .helpers import ALL_CLEAR, manage, production_env, readme_production_values

pytestmark = pytest.mark.deploy


def test_check_deploy_with_the_documented_production_values_reports_nothing(tmp_path):
    values = readme_production_values()
    # The README's block is what an operator copies: it must cover every deploy warning.
    for name in (
        "DJANGO_SECURE_HSTS_SECONDS",
        "DJANGO_SECURE_SSL_REDIRECT",
        "DJANGO_SECURE_COOKIES",
        "DJANGO_SECURE_PROXY_SSL_HEADER",
        "DJANGO_CSRF_TRUSTED_ORIGINS",
    ):
        assert name in values, f"README's Production block does not set {name}"
    result = manage(
        production_env(tmp_path, **values), "check", "--deploy", "--fail-level", "DEBUG"
    )
    assert result.stderr == ""
    assert result.stdout == ALL_CLEAR
    assert result.returncode == 0


def test_check_deploy_without_them_still_warns(tmp_path):
    # The defaults are for a local http install: the deploy check must say what is missing.
    result = manage(production_env(tmp_path), "check", "--deploy")
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.mark.parametrize("engine", ["database", "celery"])
def test_check_is_silent_on_each_task_engine(tmp_path, engine):
    result = manage(production_env(tmp_path, TASKS_ENGINE=engine), "check")
    assert result.stderr == ""
    assert result.stdout == ALL_CLEAR


def test_a_malformed_proxy_header_setting_is_refused_with_the_expected_form(tmp_path):
    env = production_env(tmp_path, DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    result = manage(env, "check")
    assert result.returncode != 0
    assert "must look like 'X-Forwarded-Proto: https'" in result.stderr


def test_the_proxy_header_setting_names_the_request_header(settings):
    from config.settings.base import _proxy_ssl_header

    assert _proxy_ssl_header("X-Forwarded-Proto: https") == ("HTTP_X_FORWARDED_PROTO", "https")
    assert _proxy_ssl_header("") is None
