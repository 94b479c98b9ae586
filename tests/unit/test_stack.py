"""stack.py: the URL of a published port."""

import pytest

from airflow_ha.stack import http_url


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("192.0.2.7", "http://192.0.2.7:8080"),
        ("0.0.0.0", "http://127.0.0.1:8080"),
        (None, "http://127.0.0.1:8080"),
        ("", "http://127.0.0.1:8080"),
        ("::1", "http://[::1]:8080"),
        ("::", "http://[::1]:8080"),
        ("2001:db8::5", "http://[2001:db8::5]:8080"),
    ],
)
def test_http_url(host: str | None, url: str) -> None:
    assert http_url(host, 8080) == url
