"""AtPort against a scripted fake modem on a real pty (tests/at_peer.py) and a TCP socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from modem_drivers.at import (
    AtPort,
    AtTimeout,
    CmeError,
    CmsError,
    CommandFailed,
    FinalKind,
    PortClosed,
    PortState,
    PortUnavailable,
    TimeoutClass,
    Urc,
)
from modem_drivers.at.port import IMPLIED_FINAL_S
from tests.at_peer import Peer

CSQ = b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


@contextlib.asynccontextmanager
async def modem(tmp_path: Path, *, echo: bool = True) -> AsyncIterator[tuple[Peer, AtPort]]:
    peer = Peer(tmp_path, echo=echo)
    peer.replies["AT+CSQ"] = CSQ
    port = await AtPort.open(str(peer.link), name="m1")
    port.reconnect_first = 0.02
    port.abandoned_grace = 0.3
    try:
        yield peer, port
    finally:
        await port.close()
        peer.close()


async def _basic_path(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        assert port.state is PortState.OPEN
        resp = await port.command("AT+CSQ")
        assert resp.lines == ("+CSQ: 20,99",)
        assert resp.value("+CSQ") == "20,99"
        assert resp.final.kind is FinalKind.OK
        assert (await port.command("AT")).lines == ()
        assert peer.received == ["AT+CSQ", "AT"]
        assert port.commands_done == 2
        assert port.bytes_out == len(b"AT+CSQ\rAT\r")
        assert port.bytes_in == len(b"AT+CSQ\r" + CSQ + b"AT\r\r\nOK\r\n")
        assert port.lines_in == 5  # echoes count: they are lines on the wire


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_basic_command_on_both_loops(tmp_path: Path, run: Callable[[Awaitable[None]], None]) -> None:
    run(_basic_path(tmp_path))


async def test_echo_off(tmp_path: Path) -> None:
    async with modem(tmp_path, echo=False) as (peer, port):
        peer.replies["AT+CGMI"] = b"\r\nSIMCOM_Ltd\r\n\r\nOK\r\n"
        assert (await port.command("AT+CGMI")).lines == ("SIMCOM_Ltd",)


async def test_error_finals_raise_typed_exceptions(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        peer.replies["AT+CPIN?"] = b"\r\n+CME ERROR: 10\r\n"
        peer.replies["AT+CNMI=2,1,0,2,0"] = b"\r\n+CMS ERROR: 303\r\n"
        peer.replies["ATD+48601000123;"] = b"\r\nNO DIALTONE\r\n"
        peer.replies["AT^FOO"] = b"\r\nCOMMAND NOT SUPPORT\r\n"
        with pytest.raises(CmeError) as cme:
            await port.command("AT+CPIN?", timeout_class=TimeoutClass.SIM)
        assert (cme.value.code, cme.value.text) == (10, "SIM not inserted")
        assert cme.value.command == "AT+CPIN?"
        with pytest.raises(CmsError) as cms:
            await port.command("AT+CNMI=2,1,0,2,0")
        assert (cms.value.code, cms.value.text) == (303, "operation not supported")
        with pytest.raises(CommandFailed) as dial:
            await port.command("ATD+48601000123;", timeout_class=TimeoutClass.DIAL)
        assert dial.value.final.kind is FinalKind.NO_DIALTONE
        with pytest.raises(CommandFailed) as vendor:
            await port.command("AT^FOO")
        assert vendor.value.final.kind is FinalKind.ERROR
        assert type(vendor.value) is CommandFailed
        assert (await port.command("AT")).final.kind is FinalKind.OK  # still usable


async def test_timeout_holds_slot_until_late_final(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        peer.silent.add("AT+COPS=?")
        with pytest.raises(AtTimeout) as err:
            await port.command("AT+COPS=?", timeout=0.1)
        assert err.value.timeout == 0.1
        assert port.waiters == 1  # abandoned, waiting for its late final
        peer.later(0.05, b"\r\n+COPS: (2,\"Plus\",\"Plus\",\"26001\",7)\r\n\r\nOK\r\n")
        resp = await port.command("AT+CSQ")  # must not take the late OK as its own
        assert resp.lines == ("+CSQ: 20,99",)
        assert peer.received == ["AT+COPS=?", "AT+CSQ"]
        assert port.waiters == 0


async def test_timeout_without_late_final_resets_after_grace(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        peer.silent.add("AT+CFUN=1")
        port.abandoned_grace = 0.1
        with pytest.raises(AtTimeout):
            await port.command("AT+CFUN=1", timeout=0.05)
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert (await port.command("AT+CSQ")).value("+CSQ") == "20,99"
        assert loop.time() - start >= 0.09  # it waited out the grace period
        assert port.waiters == 0


async def test_cpin_answer_without_final_is_taken_and_queue_stays_in_step(tmp_path: Path) -> None:
    # Wavecom M1306B (python-gsmmodem issue #19): "AT+CPIN?" -> "+CPIN: READY", no OK.
    async with modem(tmp_path) as (peer, port):
        peer.replies["AT+CPIN?"] = b"\r\n+CPIN: READY\r\n"
        resp = await port.command("AT+CPIN?", expect="+CPIN", timeout_class=TimeoutClass.SIM)
        assert resp.value("+CPIN") == "READY"
        assert resp.final.kind is FinalKind.OK and resp.final.text != "OK"  # implied, said so
        assert port.waiters == 0
        # the next command reads its own reply, not a stale final of the first
        peer.replies["AT+CGMM"] = b"\r\nMULTIBAND  900E  1800\r\n\r\nOK\r\n"
        assert (await port.command("AT+CGMM")).lines == ("MULTIBAND  900E  1800",)
        assert (await port.command("AT+CSQ")).value("+CSQ") == "20,99"
        assert peer.received == ["AT+CPIN?", "AT+CGMM", "AT+CSQ"]


async def test_cpin_final_that_follows_its_line_is_used(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        def cpin(p: Peer, command: str) -> bytes:
            p.later(0.1, b"\r\nOK\r\n")  # slower than the line, within the wait
            return b"\r\n+CPIN: SIM PIN\r\n"

        peer.replies["AT+CPIN?"] = cpin
        resp = await port.command("AT+CPIN?", expect="+CPIN", timeout_class=TimeoutClass.SIM)
        assert (resp.value("+CPIN"), resp.final.text) == ("SIM PIN", "OK")
        assert (await port.command("AT+CSQ")).value("+CSQ") == "20,99"
        # other commands still need their final: an info line alone times out
        peer.replies["AT+CGSN"] = b"\r\n861475030000011\r\n"
        with pytest.raises(AtTimeout):
            await port.command("AT+CGSN", timeout=IMPLIED_FINAL_S + 0.2)


async def test_cancellation_keeps_port_usable(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        peer.silent.add("AT+CLCC")
        task = asyncio.create_task(port.command("AT+CLCC", timeout=5))
        await peer.connected.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the abandoned command's answer arrives late, after the next one is queued;
        # the next command may only go out once that late final is in
        late_sent = []

        def late() -> None:
            late_sent.append(True)
            peer.send(b"\r\n+CLCC: 1,0,0,0,0,\"+48601000123\",145\r\n\r\nOK\r\n")

        asyncio.get_running_loop().call_later(0.05, late)
        peer.replies["AT+CSQ"] = lambda p, c: CSQ if late_sent else b"\r\nERROR\r\n"
        resp = await port.command("AT+CSQ")
        assert resp.lines == ("+CSQ: 20,99",)
        assert port.waiters == 0
        assert port.subscribers == 0


async def test_queue_is_fifo(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        for i in range(5):
            peer.replies[f"AT+X{i}"] = f"\r\n+X{i}: {i}\r\n\r\nOK\r\n".encode()
        results = await asyncio.gather(*(port.command(f"AT+X{i}") for i in range(5)))
        assert [r.value(f"+X{i}") for i, r in enumerate(results)] == ["0", "1", "2", "3", "4"]
        assert peer.received == [f"AT+X{i}" for i in range(5)]


async def test_urc_fan_out_and_unsubscribe(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with modem(tmp_path) as (peer, port):
        everything: list[Urc] = []
        sms: list[Urc] = []

        def broken(urc: Urc) -> None:
            raise RuntimeError("subscriber bug")

        unsubscribe_all = port.subscribe(everything.append)
        port.subscribe(sms.append, prefixes=["+CMTI:"])
        port.subscribe(broken)
        peer.replies["AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n\r\n+CMTI: \"SM\",3\r\n\r\nOK\r\n"
        with caplog.at_level(logging.ERROR):
            resp = await port.command("AT+CSQ")
        assert resp.lines == ("+CSQ: 20,99",)
        assert sms == [Urc("+CMTI", '+CMTI: "SM",3')]
        assert everything == sms
        assert "subscriber bug" in caplog.text
        unsubscribe_all()
        unsubscribe_all()  # idempotent
        peer.send(b"\r\nRING\r\n\r\n+CMTI: \"SM\",4\r\n")
        await port.command("AT")
        assert everything == [Urc("+CMTI", '+CMTI: "SM",3')]
        assert sms[-1] == Urc("+CMTI", '+CMTI: "SM",4')
        assert port.subscribers == 2


async def test_sms_prompt_payload_and_urc_inside(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        urcs: list[Urc] = []
        port.subscribe(urcs.append)
        peer.prompts["AT+CMGS=23"] = lambda payload: b"\r\n+CREG: 1\r\n\r\n+CMGS: 42\r\n\r\nOK\r\n"
        pdu = "0011000B914806010021F30000AA0AE8329BFD4697D9EC37"
        resp = await port.command_with_prompt("AT+CMGS=23", pdu)
        assert resp.value("+CMGS") == "42"
        assert peer.payloads == [pdu.encode() + b"\x1a"]
        assert urcs == [Urc("+CREG", "+CREG: 1")]


async def test_prompt_never_comes_times_out_and_late_prompt_gets_esc(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        peer.silent.add("AT+CMGS=10")
        with pytest.raises(AtTimeout):
            await port.command_with_prompt("AT+CMGS=10", "00", timeout=0.05)
        peer.send(b"\r\n> ")  # the modem wakes up and prompts for the abandoned command
        peer._prompt_for = "AT+CMGS=10"
        peer.prompts["AT+CMGS=10"] = lambda payload: b"\r\nERROR\r\n"
        resp = await port.command("AT+CSQ")
        assert resp.value("+CSQ") == "20,99"
        assert peer.payloads == [b"\x1b"]  # ESC, not the payload
        assert port.waiters == 0


async def test_device_vanishes_and_comes_back(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        states: list[PortState] = []
        port.on_state(states.append)
        back = asyncio.Event()
        port.on_state(lambda s: back.set() if s is PortState.OPEN else None)
        peer.silent.add("AT+CSQ")
        task = asyncio.create_task(port.command("AT+CSQ", timeout=5))
        await peer.connected.wait()
        peer.vanish()
        with pytest.raises(PortClosed):
            await task
        assert port.state is PortState.LOST
        with pytest.raises(PortClosed):
            await port.command("AT")
        await asyncio.sleep(0.1)  # a few failed reopen attempts: the path points nowhere
        peer.silent.clear()
        peer.reappear()
        await asyncio.wait_for(back.wait(), 5)
        assert states == [PortState.LOST, PortState.OPEN]
        assert (await port.command("AT+CSQ")).value("+CSQ") == "20,99"
        assert port.waiters == 0


async def test_close_fails_waiting_command(tmp_path: Path) -> None:
    async with modem(tmp_path) as (peer, port):
        peer.silent.add("AT+CSQ")
        task = asyncio.create_task(port.command("AT+CSQ"))
        await peer.connected.wait()
        await port.close()
        with pytest.raises(PortClosed):
            await task
        assert port.state is PortState.CLOSED
        with pytest.raises(PortClosed):
            await port.command("AT")


async def test_missing_port_is_unavailable_in_words(tmp_path: Path) -> None:
    with pytest.raises(PortUnavailable, match=r"^no such port: .*ttyUSB9$"):
        await AtPort.open(str(tmp_path / "ttyUSB9"))


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_socket_url_with_local_server(run: Callable[[Awaitable[None]], None]) -> None:
    run(_socket_url_with_local_server())


async def _socket_url_with_local_server() -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readuntil(b"\r"):
            received.append(line)
            writer.write(b"\r\n+CGSN: 490154203237518\r\n\r\nOK\r\n" if line == b"AT+CGSN\r"
                         else b"\r\nOK\r\n")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port_no = server.sockets[0].getsockname()[:2]
    try:
        port = await AtPort.open(f"socket://{host}:{port_no}")
        try:
            resp = await port.command("AT+CGSN")
            assert resp.value("+CGSN") == "490154203237518"
            assert (await port.command("AT")).final.kind is FinalKind.OK
        finally:
            await port.close()
    finally:
        server.close()
        await server.wait_closed()
    assert received == [b"AT+CGSN\r", b"AT\r"]


async def test_socket_url_refused() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port_no = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(PortUnavailable, match="connection refused"):
        await AtPort.open(f"socket://127.0.0.1:{port_no}")


async def test_errors_and_logs_mask_phone_numbers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with modem(tmp_path) as (peer, port):
        peer.replies["ATD+48601000123;"] = b"\r\nBUSY\r\n"
        peer.silent.add("ATD+48601000124;")
        with pytest.raises(CommandFailed) as err:
            await port.command("ATD+48601000123;")
        assert err.value.command == "ATD+48601000123;"  # the attribute keeps it
        assert "601000123" not in str(err.value) and "123" in str(err.value)
        with caplog.at_level(logging.WARNING), pytest.raises(AtTimeout) as late:
            await port.command("ATD+48601000124;", timeout=0.05)
        assert "601000124" not in str(late.value) + caplog.text
        assert "********124" in caplog.text


class _Rfc2217Server:
    """pyserial's RFC 2217 PortManager in front of the peer's pty (threads: test side only)."""

    def __init__(self, device: str) -> None:
        import socket
        import threading

        import serial
        from serial import rfc2217

        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._device = device
        self._serial_mod, self._rfc = serial, rfc2217
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._stop = False
        self._threads[0].start()

    def _serve(self) -> None:
        import threading

        conn, _ = self._listener.accept()
        class PtySerial(self._serial_mod.Serial):  # a pty has no modem lines to ioctl
            cts = dsr = ri = cd = False

            def _update_dtr_state(self) -> None:
                pass

            def _update_rts_state(self) -> None:
                pass

        ser = PtySerial(self._device, timeout=0.05)

        class _Writer:  # PortManager wants an object with write()
            write = conn.sendall

        manager = self._rfc.PortManager(ser, _Writer())

        def to_network() -> None:
            try:
                while not self._stop:
                    data = ser.read(4096)
                    if data:
                        conn.sendall(b"".join(manager.escape(data)))
            except (OSError, TypeError, self._serial_mod.SerialException):
                pass  # closed under us at teardown

        threading.Thread(target=to_network, daemon=True).start()
        try:
            while not self._stop:
                data = conn.recv(4096)
                if not data:
                    break
                ser.write(b"".join(manager.filter(data)))
        except OSError:
            pass
        self._stop = True
        ser.close()
        conn.close()

    def close(self) -> None:
        self._stop = True
        self._listener.close()


async def test_rfc2217_url_through_pyserial_thread(tmp_path: Path) -> None:
    peer = Peer(tmp_path)
    peer.replies["AT+CSQ"] = CSQ
    server = _Rfc2217Server(str(peer.link))
    try:
        port = await AtPort.open(f"rfc2217://127.0.0.1:{server.port}")
        try:
            assert (await port.command("AT+CSQ")).value("+CSQ") == "20,99"
            assert peer.received[-1] == "AT+CSQ"
        finally:
            await port.close()
    finally:
        server.close()
        peer.close()
