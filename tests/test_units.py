"""Pure helpers: password rules and lockout arithmetic, token lifetimes, GPU parsing, secrets."""

from datetime import datetime, timedelta

import pytest

from kqi_services.accounts.passwords import WeakPassword, after_failure, hash_password, is_locked, verify_password
from kqi_services.accounts.secretbox import SecretBox
from kqi_services.accounts.tokens import token_lifetime
from kqi_services.errors import InvalidInput
from kqi_services.jobs.nodes import detect_cpu, detect_memory_gb, parse_nvidia_smi


def test_password_hash_and_rules():
    h = hash_password("correct horse")
    assert verify_password("correct horse", h) and not verify_password("wrong horse", h)
    assert not verify_password("x" * 100, h)
    with pytest.raises(WeakPassword):
        hash_password("short")
    with pytest.raises(WeakPassword):
        hash_password("é" * 40)  # 80 bytes: bcrypt would silently cut it


def test_lockout_arithmetic():
    now = datetime(2026, 1, 1)
    assert after_failure(0, now, 3, 60) == (1, None)
    assert after_failure(2, now, 3, 60) == (0, now + timedelta(seconds=60))
    assert after_failure(10, now, 0, 60) == (11, None)  # 0 disables
    assert is_locked(now + timedelta(seconds=1), now) and not is_locked(now, now) and not is_locked(None, now)


def test_token_lifetime():
    assert token_lifetime(None, 100, 1000) == 100
    assert token_lifetime(5000, 100, 1000) == 1000
    for bad in (0, -1, "10", True, 1.5):
        with pytest.raises(InvalidInput):
            token_lifetime(bad, 100, 1000)


def test_parse_nvidia_smi():
    out = "0, NVIDIA H100 80GB HBM3, GPU-aaaa, 81559\n1, NVIDIA H100 80GB HBM3, GPU-bbbb, 81559\n"
    gpus = parse_nvidia_smi(out)
    assert [(g.index, g.uuid, g.memory_mib) for g in gpus] == [(0, "GPU-aaaa", 81559), (1, "GPU-bbbb", 81559)]
    assert parse_nvidia_smi("No devices were found\n") == []


def test_detected_capacity_is_positive(tmp_path):
    assert detect_cpu() >= 1
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24600000 kB\nMemFree: 1 kB\n")
    assert detect_memory_gb(str(meminfo)) == 23


def test_secret_box_round_trip_and_key_file_mode(tmp_path):
    box = SecretBox.from_key_file(str(tmp_path / "k" / "key"))
    token = box.encrypt("ghp_secret")
    assert b"ghp_secret" not in token and box.decrypt(token) == "ghp_secret"
    assert (tmp_path / "k" / "key").stat().st_mode & 0o777 == 0o600
    other = SecretBox.from_key_file(str(tmp_path / "other"))
    with pytest.raises(ValueError):
        other.decrypt(token)
