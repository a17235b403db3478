"""A page in headless Chromium, driven over the Chrome DevTools Protocol (a websocket, aiohttp):
console errors, exceptions and dialogs collected, every canvas's pixels counted, a screenshot.

`python -m tests.report.browser OUT.png [REPORT.html]` writes the screenshot of docs/report.md:
the report of the generated history (tests/report/generator.py) under
examples/policies/extended.toml, or of a report written before (`make bench-year`'s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

CHROMIUM: Final = shutil.which("chromium") or shutil.which("chromium-browser")
_LISTENING: Final = re.compile(r"DevTools listening on (ws://\S+)")

# Every canvas: its size, how many of its pixels are painted and how many colours they have.
_CANVASES: Final = """
JSON.stringify(Array.from(document.querySelectorAll("canvas")).map(function (canvas) {
  var pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  var painted = 0, colours = new Set();
  for (var i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] !== 0) { painted++; colours.add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]); }
  }
  return {id: canvas.id, width: canvas.width, height: canvas.height, painted: painted,
          colours: colours.size, charted: !!Chart.getChart(canvas)};
}))
"""

# A PNG decoded by the browser itself: the colours of a sample of its pixels.
_PNG_COLOURS: Final = """
new Promise(function (resolve, reject) {
  var image = new Image();
  image.onload = function () {
    var canvas = document.createElement("canvas");
    canvas.width = image.width; canvas.height = image.height;
    var context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    var pixels = context.getImageData(0, 0, image.width, image.height).data, colours = new Set();
    for (var i = 0; i < pixels.length; i += 4 * 97) {
      colours.add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]);
    }
    resolve(JSON.stringify({width: image.width, height: image.height, colours: colours.size}));
  };
  image.onerror = function () { reject(new Error("not a PNG the browser can decode")); };
  image.src = "data:image/png;base64,%s";
})
"""


@dataclass(slots=True)
class Page:
    """What a loaded page showed: problems reported by the browser, and its canvases."""

    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    canvases: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""


class DevTools:
    """One page target's websocket: commands with ids, events kept as they come."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            payload = json.loads(message.data)
            if "id" in payload and payload["id"] in self._waiting:
                self._waiting.pop(payload["id"]).set_result(payload)
            else:
                self.events.append(payload)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        future = self._waiting[number] = asyncio.get_running_loop().create_future()
        await self._socket.send_json({"id": number, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"evaluation failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def until(self, method: str, since: int = 0, timeout: float = 30) -> None:
        """Wait for an event `method` among the events from index `since` on."""

        async def seen() -> None:
            while not any(event.get("method") == method for event in self.events[since:]):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(seen(), timeout)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._socket.close()


@contextlib.asynccontextmanager
async def chromium(width: int = 1400, height: int = 3000) -> AsyncIterator[DevTools]:
    """A headless Chromium of its own (own profile, own port), stopped on leaving."""
    assert CHROMIUM is not None, "chromium is not installed"
    # Chromium's helper processes can still be writing its cache when the browser has exited:
    # a profile left behind in /tmp must not fail the test that used it.
    with tempfile.TemporaryDirectory(
        prefix="report-chromium-", ignore_cleanup_errors=True
    ) as profile:
        log = Path(profile) / "stderr.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
                 f"--user-data-dir={profile}/data", "--remote-debugging-port=0",
                 f"--window-size={width},{height}", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        try:
            browser = await _listening(process, log)
            async with aiohttp.ClientSession() as session:
                port = browser.split(":")[2].split("/")[0]
                async with session.get(f"http://127.0.0.1:{port}/json/list") as answer:
                    targets = await answer.json()
                page = next(t for t in targets if t["type"] == "page")
                socket = await session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
                tools = DevTools(socket)
                try:
                    for domain in ("Page", "Runtime", "Log"):
                        await tools.send(f"{domain}.enable")
                    await tools.send(
                        "Emulation.setDeviceMetricsOverride",
                        width=width, height=height, deviceScaleFactor=1, mobile=False,
                    )  # fmt: skip
                    yield tools
                finally:
                    await tools.close()
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _listening(process: subprocess.Popen[bytes], log: Path) -> str:
    """The browser's DevTools address, once it writes it to its stderr."""
    for _ in range(300):
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return found[1]
        if process.poll() is not None:
            break
        await asyncio.sleep(0.05)
    raise RuntimeError(f"chromium gave no DevTools address: {log.read_text(errors='replace')}")


async def load(tools: DevTools, url: str) -> Page:
    """Open `url`, wait for its load event and a frame drawn; what the page reported."""
    since = len(tools.events)  # about:blank's own load event may come in late: not this one
    await tools.send("Page.navigate", url=url)
    await tools.until("Page.loadEventFired", since)
    await tools.evaluate(
        "new Promise(function (r) { requestAnimationFrame(function () { r(1); }); })"
    )
    page = Page()
    for event in tools.events[since:]:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            page.problems.append(f"exception: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "warning",
            "assert",
        ):
            page.problems.append(f"console.{params['type']}: {params['args']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            page.problems.append(f"log: {params['entry']['text']}")
        elif method == "Page.javascriptDialogOpening":
            page.dialogs.append(params["message"])
    page.canvases = json.loads(await tools.evaluate(_CANVASES))
    page.text = await tools.evaluate("document.body.innerText")
    return page


async def screenshot(tools: DevTools) -> bytes:
    answer = await tools.send("Page.captureScreenshot", format="png")
    return base64.b64decode(answer["data"])


async def png_colours(tools: DevTools, png: bytes) -> dict[str, int]:
    """The browser decodes the PNG: its size and the colours of a sample of its pixels."""
    await tools.send("Page.navigate", url="about:blank")
    encoded = base64.b64encode(png).decode()
    colours: dict[str, int] = json.loads(await tools.evaluate(_PNG_COLOURS % encoded))
    return colours


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking its pixel data inflates to the size they need
    (8-bit RGB or RGBA, as Chromium writes them)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        chunk = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    channels = {2: 3, 6: 4}[colour]
    assert depth == 8
    assert len(zlib.decompress(idat)) == height * (1 + width * channels)
    return width, height


async def _main(out: Path, report: Path | None) -> None:
    from tests.report.render_fixtures import generated_report

    with tempfile.TemporaryDirectory() as folder:
        html = Path(folder) / "report.html"
        html.write_text(generated_report(hostile=False) if report is None else report.read_text())
        async with chromium() as tools:
            page = await load(tools, html.as_uri())
            assert not page.problems, page.problems
            out.write_bytes(await screenshot(tools))
    sys.stdout.write(f"{out}: {out.stat().st_size:,} bytes\n")


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
