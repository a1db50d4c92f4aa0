"""The signature verifiers of docs/api.md, run against what the service really sends."""

import base64
import json
import re
import shutil
import subprocess

import pytest

from jobs.signing import signature_headers
from tests.support import ROOT

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = json.dumps(
    {"phoneNumber": "+14155550123", "message": "héllo", "jobId": "j-1"}
).encode()


def readme_block(name: str) -> str:
    """The verifier shown in docs/api.md (Verifying signatures)."""
    docs = (ROOT / "docs" / "api.md").read_text()
    match = re.search(rf"<!-- verifier:{name} -->\n```\w+\n(.*?)```", docs, re.S)
    assert match, f"no {name} verifier in docs/api.md"
    return match.group(1)


@pytest.fixture
def signed(settings):
    settings.CALLBACK_SIGNING_SECRETS = [SECRET, OLD]
    return signature_headers("j-1", BODY)


def test_python_verifier_from_the_readme(signed):
    namespace = {}
    exec(readme_block("python"), namespace)
    verify = namespace["verify"]
    assert verify(SECRET, signed, BODY) and verify(OLD, signed, BODY)
    assert not verify(SECRET, signed, BODY + b" ")
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), signed, BODY)
    stale = {
        **signed,
        "webhook-timestamp": str(int(signed["webhook-timestamp"]) - 3600),
    }
    assert not verify(SECRET, stale, BODY)


@pytest.mark.skipif(not shutil.which("node"), reason="Node.js is not installed")
def test_node_verifier_from_the_readme(signed):
    script = (
        readme_block("node")
        + """
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const body = Buffer.from(input.body, "base64");
console.log(JSON.stringify([
  verify(input.secret, input.headers, body),
  verify(input.old, input.headers, body),
  verify(input.secret, input.headers, Buffer.concat([body, Buffer.from(" ")])),
]));
"""
    )
    payload = {
        "secret": SECRET,
        "old": OLD,
        "headers": signed,
        "body": base64.b64encode(BODY).decode(),
    }
    result = subprocess.run(
        ["node", "-e", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, True, False]
