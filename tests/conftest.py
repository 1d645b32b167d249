"""Shared fixtures: a clean NEBIUS_* environment for every test, simulators on port 0, the spec validator."""

from __future__ import annotations

import os

import pytest

# Charts render off-screen in tests, whatever the machine's default backend.
os.environ["MPLBACKEND"] = "Agg"


@pytest.fixture(autouse=True)
def _clean_nebius_env(monkeypatch):
    """No test sees the developer's real key or base URL."""
    for name in list(os.environ):
        if name.startswith("NEBIUS_"):
            monkeypatch.delenv(name)


# --- simulator fixtures and the OpenAPI validator (tests/test_simulator.py and others) ---

SPEC_FILE = os.path.join(os.path.dirname(__file__), "data", "operations-openapi.yaml")


@pytest.fixture(scope="session")
def sim():
    """One simulator for the session: seed 0, 60 operations, speed 60, port 0. Treat as read-only."""
    from nb_ops import simulator

    with simulator.start(seed=0, speed=60.0) as running:
        yield running


@pytest.fixture
def start_sim():
    """Start simulators with any options (``start_sim(speed=0, size=10)``); all are stopped after the test."""
    from nb_ops import simulator

    started = []

    def _start(**kwargs):
        started.append(simulator.start(**kwargs))
        return started[-1]

    yield _start
    for s in started:
        s.stop()


class SpecValidator:
    """Validates bodies against a component of the OpenAPI spec, with format checking (date-time ...).

    ``validator(body)`` raises ``jsonschema.ValidationError`` if ``body`` is not an
    ``OperationResponse``; ``validator(body, "HTTPValidationError")`` checks another
    component; ``validator.errors(body)`` lists the errors instead of raising.
    """

    def __init__(self, spec):
        self.spec = spec
        self._validators = {}

    def validator(self, component="OperationResponse"):
        from openapi_schema_validator import OAS31Validator

        if component not in self._validators:
            schema = {"$ref": f"#/components/schemas/{component}", "components": self.spec["components"]}
            OAS31Validator.check_schema(schema)
            self._validators[component] = OAS31Validator(schema, format_checker=OAS31Validator.FORMAT_CHECKER)
        return self._validators[component]

    def errors(self, body, component="OperationResponse"):
        return list(self.validator(component).iter_errors(body))

    def __call__(self, body, component="OperationResponse"):
        import jsonschema

        error = jsonschema.exceptions.best_match(self.validator(component).iter_errors(body))
        if error is not None:
            raise error


@pytest.fixture(scope="session")
def openapi_spec():
    """The contract, ``tests/data/operations-openapi.yaml``, as a dict."""
    import yaml

    with open(SPEC_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="session")
def operation_schema_validator(openapi_spec):
    """A :class:`SpecValidator` over the spec's components (``OperationResponse`` by default)."""
    return SpecValidator(openapi_spec)
