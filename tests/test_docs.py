"""The docs keep up with the code: docs/openapi.yaml is what /api/schema serves,
every environment variable the settings read is in docs/configuration.md, the
README stays short and its links lead somewhere."""

import re

import yaml

from tests.support import ROOT

DOCS = ROOT / "docs"
# Where the processes read the environment: the settings and their helpers, the
# web server's launcher and make run's launcher.
ENV_READERS = [
    "config/settings.py",
    "config/env.py",
    "config/serve.py",
    "config/devrun.py",
]
ENV_READ = re.compile(
    r"""(?:env_\w+|env\.get|environ\.get|environ\[|getenv)\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def test_committed_openapi_schema_is_what_api_schema_serves(client):
    served = client.get("/api/schema")
    assert served.status_code == 200
    committed = (DOCS / "openapi.yaml").read_text()
    assert yaml.safe_load(served.content) == yaml.safe_load(committed), (
        "docs/openapi.yaml differs from /api/schema: regenerate it with "
        "`make openapi` (manage.py spectacular --file docs/openapi.yaml)"
    )
    assert served.content.decode() == committed


def test_schema_shows_paths_without_trailing_slash_seed_endpoints_first(client):
    schema = yaml.safe_load(client.get("/api/schema").content)
    paths = list(schema["paths"])
    assert paths[:2] == ["/api/schedule-sms", "/api/schedule-email"]
    assert not [path for path in paths if path.endswith("/")]
    tags = [tag["name"] for tag in schema["tags"]]
    assert tags[0] == "Scheduling"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert len(operation["tags"]) == 1 and operation["tags"][0] in tags, (
                method,
                path,
            )


def env_variables_read() -> set[str]:
    names = set()
    for reader in ENV_READERS:
        names |= set(ENV_READ.findall((ROOT / reader).read_text()))
    return names - {"DJANGO_SETTINGS_MODULE"}


def test_every_environment_variable_read_is_documented():
    read = env_variables_read()
    # The reader pattern still finds what it is meant to find.
    assert {"REDIS_URL", "SECRET_KEY", "WEB_CONCURRENCY", "EMBEDDED_REDIS_PORT"} <= read
    documented = set(
        re.findall(r"`([A-Z][A-Z0-9_]+)`", (DOCS / "configuration.md").read_text())
    )
    assert read - documented == set(), "add these to docs/configuration.md"


def test_readme_is_short_and_its_links_lead_to_files():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for document in [readme, *(p.read_text() for p in DOCS.glob("*.md"))]:
        for target in re.findall(
            r"\]\(((?:docs/|\./|\.\./)?[\w./-]+\.(?:md|yaml|py))(?:#[\w-]+)?\)",
            document,
        ):
            assert (ROOT / target).exists() or (DOCS / target).exists(), target
