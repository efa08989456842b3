"""Secrets in DSNs and URLs never reach the manifest."""

from heisen._redact import redact, redact_text
from heisen.manifest import RunInfo, RunManifest


def test_passwords_in_urls_and_keywords_are_masked():
    assert (
        redact_text("postgresql://app:s3cret@127.0.0.1:5432/db")
        == "postgresql://app:***@127.0.0.1:5432/db"
    )
    assert redact_text("redis://:hunter2@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert (
        redact_text("host=127.0.0.1 password=s3cret user=app")
        == "host=127.0.0.1 password=*** user=app"
    )
    assert redact_text("http://127.0.0.1:8080/path") == "http://127.0.0.1:8080/path"


def test_secret_looking_keys_are_masked_through_nesting():
    data = {
        "env": {"API_TOKEN": "abc", "DATABASE_URL": "postgresql://u:pw@h/db"},
        "list": ["x://a:b@h"],
    }
    assert redact(data) == {
        "env": {"API_TOKEN": "***", "DATABASE_URL": "postgresql://u:***@h/db"},
        "list": ["x://a:***@h"],
    }


def test_the_saved_manifest_holds_no_password(tmp_path):
    manifest = RunManifest(
        run=RunInfo(
            id="r",
            pipeline="p.yaml",
            pipeline_sha256="0",
            seed=1,
            started_at="now",
            heisen_version="0",
        ),
        pipeline={
            "dependencies": {
                "postgres": {"kind": "postgres", "dsn": "postgresql://app:s3cret@127.0.0.1/db"}
            }
        },
    )
    manifest.phase("stress").outputs = {"note": "connected to redis://:hunter2@127.0.0.1:6379"}
    text = manifest.save(tmp_path).read_text()
    assert "s3cret" not in text and "hunter2" not in text
    assert RunManifest.load(tmp_path).run.id == "r"
