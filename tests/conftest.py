"""Shared fixtures: an emulated bank, an appliance on it, a controller on an ephemeral port
with a movable clock, and a CRM client holding the controller's API key.

Each test file says what it needs the pytest way, without copying a fixture:

* the bank's options (``EmulatorConfig`` fields) in a ``bank`` marker — on the test, or
  for the whole file as ``pytestmark = pytest.mark.bank(modems=4, seed=3)`` — or as an
  indirect parameter of ``bank``; ``emulated_bank`` is the factory for further banks;
* the appliance's config by overriding the ``appliance_config`` fixture in the file, its
  seed in an ``appliance`` marker; ``start_appliance`` is the factory;
* the controller's config by overriding ``controller_config``, its clock by overriding
  ``clock``, ``dispatch=False`` in a ``controller`` marker;
* the controller's store backend: ``store_url`` (with ``make_controller_config`` and
  ``open_store`` built on it) is a SQLite file, and in the controller's own test files
  (``test_controller_*.py``) every test that uses it runs twice, on SQLite and on a
  PostgreSQL database of its own (tests/pg_harness.py: one private server per session).

The helpers behind them live beside this file (bank_harness.py, controller_harness.py,
system_harness.py) so that a test can also use them in its body. They are imported when
a fixture first needs them: collecting the parser's tests does not import the controller.
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import aiohttp
import pytest

if TYPE_CHECKING:
    from appliance.runtime import Appliance
    from bank_harness import EmulatedBank
    from controller.config import ControllerConfig
    from controller.server import Controller
    from controller.store import Store
    from controller_harness import FakeClock
    from modem_drivers.emulator import Emulator
    from pg_harness import PgServer
    from system_harness import Crm

#: The bearer token of the default ``appliance_config``'s local API.
APPLIANCE_TOKEN = "t"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bank(**options): EmulatorConfig fields of the bank the bank/emu fixtures start")
    config.addinivalue_line("markers", "appliance(seed=1): the seed of the appliance fixture's Appliance")
    config.addinivalue_line("markers", "controller(dispatch=True): options of the controller fixture's start")


#: Test files whose tests run on both store backends wherever they use ``store_url``.
BOTH_BACKENDS_PREFIX = "test_controller_"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" in metafunc.fixturenames and metafunc.module.__name__.startswith(BOTH_BACKENDS_PREFIX):
        metafunc.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)


def marked(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    """The keyword arguments of the closest ``name`` marker, then an indirect parameter's."""
    marker = request.node.get_closest_marker(name)
    return {**(marker.kwargs if marker else {}), **getattr(request, "param", {})}


# -- the emulated bank -----------------------------------------------------------------

StartBank = Callable[..., Awaitable["EmulatedBank"]]


@pytest.fixture
async def emulated_bank(tmp_path) -> AsyncIterator[StartBank]:
    """Factory: ``await emulated_bank(**options)`` starts a bank (``EmulatorConfig``
    fields; ``name=`` keeps a second bank's files apart); every bank stops at teardown."""
    from bank_harness import bank_running

    async with contextlib.AsyncExitStack() as stack:
        async def start(name: str = "bank", **options: Any) -> EmulatedBank:
            return await stack.enter_async_context(bank_running(tmp_path, name, **options))

        yield start


@pytest.fixture
async def bank(request: pytest.FixtureRequest, emulated_bank: StartBank) -> EmulatedBank:
    """The test's bank, ``(emu, state)``: options from its ``bank`` marker or an indirect
    parameter, ``EmulatorConfig``'s defaults for the rest."""
    return await emulated_bank(**marked(request, "bank"))


@pytest.fixture
def emu(bank: EmulatedBank) -> Emulator:
    """The test's bank's emulator, for tests that talk to the ports themselves."""
    return bank.emu


# -- the appliance ---------------------------------------------------------------------

StartAppliance = Callable[..., Awaitable["Appliance"]]


@pytest.fixture
async def start_appliance(emulated_bank: StartBank) -> AsyncIterator[StartAppliance]:
    """Factory: ``await start_appliance(config, seed=1)`` is a started Appliance; each
    stops at teardown, before the banks (this fixture is set up after their factory)."""
    from appliance.config import parse_config
    from appliance.runtime import Appliance

    apps: list[Appliance] = []

    async def start(config: dict[str, Any], *, seed: int = 1) -> Appliance:
        app = Appliance(parse_config(config), seed=seed)
        await app.start()
        apps.append(app)
        return app

    try:
        yield start
    finally:
        for app in reversed(apps):
            await app.stop()


@pytest.fixture
def appliance_config(tmp_path, bank: EmulatedBank) -> dict[str, Any]:
    """The ``appliance`` fixture's config (a file overrides this fixture for its own):
    every modem of ``bank``, a store in tmp_path, the local API on a free port."""
    return {"emulator_state": str(bank.state),
            "appliance": {"id": "test", "store": str(tmp_path / "appliance.db"), "listen": "127.0.0.1:0",
                          "token": APPLIANCE_TOKEN}}


@pytest.fixture
async def appliance(request: pytest.FixtureRequest, appliance_config: dict[str, Any],
                    start_appliance: StartAppliance) -> Appliance:
    """A started Appliance on ``appliance_config``, seeded by the ``appliance`` marker."""
    return await start_appliance(appliance_config, **marked(request, "appliance"))


# -- the controller's store -------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL server for the session (started when a test first needs it)."""
    from pg_harness import pg_server as start

    with start() as server:
        yield server


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: both in test_controller_*.py (pytest_generate_tests), else SQLite."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def store_url(request: pytest.FixtureRequest, store_backend: str, tmp_path) -> Iterator[str]:
    """Where the test's controller store is: a file in tmp_path, or a fresh PostgreSQL database."""
    if store_backend == "sqlite":
        yield str(tmp_path / "c.db")
        return
    with request.getfixturevalue("pg_server").database() as url:
        yield url


@pytest.fixture
def make_controller_config(store_url: str, tmp_path) -> Callable[..., ControllerConfig]:
    """Factory: ``make_controller_config(**sections)`` is ``make_config``'s config on the
    test's store (recordings in tmp_path)."""
    from controller_harness import make_config

    return lambda **sections: make_config(store_url, recordings=tmp_path / "c.recordings", **sections)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Factory: ``open_store()`` is a new Store on the test's store (two calls: two
    controllers over one database); each is closed at teardown."""
    from controller.store import Store

    stores: list[Store] = []

    def open_() -> Store:
        stores.append(Store(store_url))
        return stores[-1]

    yield open_
    for s in stores:
        s.close()


# -- the controller and its CRM --------------------------------------------------------

class RunningController(NamedTuple):
    """A started controller and a fresh API key (``c, key = controller``)."""

    c: Controller
    key: str


@pytest.fixture
def clock() -> FakeClock:
    """The controller's clock: wall time, movable forward (a file overrides it to start
    at another time)."""
    from controller_harness import FakeClock

    return FakeClock()


@pytest.fixture
def controller_config(make_controller_config: Callable[..., ControllerConfig]) -> ControllerConfig:
    """The ``controller`` fixture's config (``make_config``'s on ``store_url``; a file overrides it)."""
    return make_controller_config()


@pytest.fixture
async def controller(request: pytest.FixtureRequest, controller_config: ControllerConfig,
                     clock: FakeClock) -> AsyncIterator[RunningController]:
    """A controller on an ephemeral port with ``clock``, stopped at teardown."""
    from controller_harness import running

    async with running(controller_config, clock, **marked(request, "controller")) as (c, key):
        yield RunningController(c, key)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session, closed at teardown."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def crm(controller: RunningController, http: aiohttp.ClientSession) -> Crm:
    """The upstream CRM: the controller's /v1 API with its key (its session closes before
    the controller stops)."""
    from system_harness import Crm

    return Crm(http, controller.c.url, controller.key)
