"""Settings: defaults, environment, overrides, and fail-fast validation outside dev."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from lti_app.settings import SettingsError, load_settings, setting_docs


def test_production_without_secret_key_stops_with_clear_message(tmp_path):
    with pytest.raises(SettingsError, match="CASELOAD_SECRET_KEY is not set"):
        load_settings({"CASELOAD_ENV": "production"}, instance_path=str(tmp_path))


def test_production_without_data_keys_stops(tmp_path):
    env = {"CASELOAD_ENV": "production", "CASELOAD_SECRET_KEY": "s" * 40}
    with pytest.raises(SettingsError, match="CASELOAD_DATA_KEYS"):
        load_settings(env, instance_path=str(tmp_path))


def test_production_requires_https_and_postgresql(tmp_path):
    env = {"CASELOAD_ENV": "production", "CASELOAD_SECRET_KEY": "s" * 40,
           "CASELOAD_DATA_KEYS": Fernet.generate_key().decode(), "CASELOAD_BASE_URL": "http://x.test",
           "CASELOAD_DATABASE_URL": "postgresql+psycopg://db/x", "CASELOAD_TIMEZONE": "America/Chicago"}
    with pytest.raises(SettingsError, match="https"):
        load_settings(env, instance_path=str(tmp_path))
    env["CASELOAD_BASE_URL"] = "https://x.test"
    env["CASELOAD_DATABASE_URL"] = "sqlite:///x"
    with pytest.raises(SettingsError, match="PostgreSQL"):
        load_settings(env, instance_path=str(tmp_path))


def test_production_requires_the_district_time_zone(tmp_path):
    env = {"CASELOAD_ENV": "production", "CASELOAD_SECRET_KEY": "s" * 40,
           "CASELOAD_DATA_KEYS": Fernet.generate_key().decode(), "CASELOAD_BASE_URL": "https://x.test",
           "CASELOAD_DATABASE_URL": "postgresql+psycopg://db/x"}
    with pytest.raises(SettingsError, match="CASELOAD_TIMEZONE is not set"):
        load_settings(env, instance_path=str(tmp_path))
    env["CASELOAD_TIMEZONE"] = "Mars/Olympus_Mons"
    with pytest.raises(SettingsError, match="not an IANA time zone"):
        load_settings(env, instance_path=str(tmp_path))
    env["CASELOAD_TIMEZONE"] = "Pacific/Guam"
    assert load_settings(env, instance_path=str(tmp_path)).timezone == "Pacific/Guam"


def test_dev_and_test_default_to_a_us_zone(tmp_path):
    assert load_settings({"CASELOAD_ENV": "test"}, instance_path=str(tmp_path)).timezone == "America/Chicago"


def test_invalid_data_key_is_named(tmp_path):
    with pytest.raises(SettingsError, match="entry 1 is not a valid Fernet key"):
        load_settings({"CASELOAD_DATA_KEYS": "nope"}, instance_path=str(tmp_path))


def test_dev_defaults_to_sqlite_in_instance_and_persists_dev_data_key(tmp_path):
    s1 = load_settings({}, instance_path=str(tmp_path))
    s2 = load_settings({}, instance_path=str(tmp_path))
    assert s1.database_url.startswith("sqlite:///") and str(tmp_path) in s1.database_url
    assert s1.data_keys == s2.data_keys
    assert s1.eager_tasks is True
    assert s1.practice_enabled is True


def test_overrides_win_over_environment(tmp_path):
    s = load_settings({"CASELOAD_APP_TOKEN_TTL": "10"}, overrides={"app_token_ttl": 99}, instance_path=str(tmp_path))
    assert s.app_token_ttl == 99


def test_practice_url_is_a_different_site_from_base_url(tmp_path):
    s = load_settings({"CASELOAD_BASE_URL": "http://127.0.0.1:5000"}, instance_path=str(tmp_path))
    assert s.practice_url == "http://localhost:5000"


def test_every_setting_is_documented():
    docs = setting_docs()
    assert len(docs) >= 15
    assert all(desc for _, _, desc in docs), [name for name, _, desc in docs if not desc]
