"""`putt-daemon calibrate --serve`: the calibration page in a real headless Chromium driven by Selenium.

The command runs as a real process; in the main test a real service on `sim://` runs beside it, so the page's
frame comes from the service and a save makes the service reload. Lanes and quadrants shown by the page are
compared with `daemon.vision.calibration` on the same points.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from daemon.vision.calibration import (
    CLICKED,
    Region,
    derive_hole_quadrants,
    derive_ramp_lanes,
    load_calibration,
)
from tests.conftest import REPO, ServiceProcess, free_port, wait_until

SIM = "sim://?seed=0&putts=4&realtime=1"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LANES = (Region.RAMP_LEFT, Region.RAMP_CENTER, Region.RAMP_RIGHT)
QUADRANTS = (Region.HOLE_TOP, Region.HOLE_RIGHT, Region.HOLE_LOW, Region.HOLE_LEFT)


class PageProcess:
    """`putt-daemon calibrate --serve` in a real process; `url` is the one it printed."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.stderr = tmp_path / "page.stderr"
        with self.stderr.open("w") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon", "calibrate", "--serve", *args],
                env={**env, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=errors,
                text=True,
            )  # fmt: skip
        assert self.process.stdout is not None
        self.lines: list[str] = []
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.strip().startswith("http://"):
                self.url = line.strip()
                return
        raise AssertionError(f"no URL printed: {self.lines}\n{self.stderr.read_text()}")

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        """Send SIG; the exit code and the rest of stdout."""
        self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=20)
        return self.process.returncode, out

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,760",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=DriverService(CHROMEDRIVER, log_output=subprocess.DEVNULL)
    )
    yield driver
    driver.quit()


@pytest.fixture
def pages() -> Iterator[list[PageProcess]]:
    started: list[PageProcess] = []
    yield started
    for page in started:
        page.close()


def page_state(driver: WebDriver) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script("return JSON.parse(JSON.stringify(window.calibrationPage))")
    return state


def settled(driver: WebDriver) -> dict[str, Any]:
    """The page's state once the derived regions belong to its current points."""
    wait_until(lambda: (s := page_state(driver))["derivedRevision"] == s["revision"], timeout=15)
    return page_state(driver)


def offset(driver: WebDriver, canvas: WebElement, x: float, y: float) -> tuple[int, int]:
    """Where frame pixel (X, Y) is, from the canvas's centre in CSS pixels (Selenium's origin)."""
    box: dict[str, float] = driver.execute_script(
        "const c = arguments[0], b = c.getBoundingClientRect(); return {w: b.width, h: b.height, left: "
        "c.clientLeft, top: c.clientTop, cw: c.clientWidth, ch: c.clientHeight, fw: c.width, fh: c.height};",
        canvas,
    )
    css_x = box["left"] + (x + 0.5) * box["cw"] / box["fw"]
    css_y = box["top"] + (y + 0.5) * box["ch"] / box["fh"]
    return round(css_x - box["w"] / 2), round(css_y - box["h"] / 2)


def drag(driver: WebDriver, canvas: WebElement, start: tuple[int, int], end: tuple[int, int]) -> None:
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(canvas, *offset(driver, canvas, *start)).click_and_hold()
    actions.move_to_element_with_offset(canvas, *offset(driver, canvas, *middle))
    actions.move_to_element_with_offset(canvas, *offset(driver, canvas, *end)).release().perform()


def click_at(driver: WebDriver, canvas: WebElement, point: tuple[int, int]) -> None:
    ActionChains(driver).move_to_element_with_offset(
        canvas, *offset(driver, canvas, *point)
    ).click().perform()


def as_polygon(points: list[list[int]]) -> tuple[tuple[int, int], ...]:
    return tuple((x, y) for x, y in points)


def assert_derived_like_the_daemon(state: dict[str, Any]) -> None:
    ramp, hole = as_polygon(state["points"]["RAMP_ROI"]), as_polygon(state["points"]["HOLE_ROI"])
    expected = derive_ramp_lanes(ramp) | derive_hole_quadrants(hole)
    for region in (*LANES, *QUADRANTS):
        assert as_polygon(state["derived"][region.value]) == expected[region], region


def near(a: list[int] | tuple[int, int], b: tuple[int, int], tolerance: int = 2) -> bool:
    return abs(a[0] - b[0]) <= tolerance and abs(a[1] - b[1]) <= tolerance


def test_the_page_shows_the_service_frame_and_saves_what_was_dragged_and_clicked(
    tmp_path: Path, cli_env: dict[str, str], browser: WebDriver, pages: list[PageProcess]
) -> None:
    state_dir, calibration = tmp_path / "state", tmp_path / "rig" / "calibration.json"
    calibration.parent.mkdir()
    shutil.copy(REPO / "config" / "calibration.json", calibration)
    original = calibration.read_bytes()
    env = {**cli_env, "PUTT_STATE_DIR": str(state_dir), "PUTT_CAMERA_SOURCE": SIM,
           "PUTT_CALIBRATION_FILE": str(calibration)}  # fmt: skip
    service = ServiceProcess(tmp_path, env)
    try:
        service.wait_datagram(lambda d: "READY=1" in d, timeout=60)
        page = PageProcess(tmp_path, env, "--port", str(free_port()))
        pages.append(page)
        assert page.url.startswith("http://127.0.0.1:")
        assert "token" not in page.url
        service.wait_line(r"snapshot written to")  # the frame came from the service, which owns the camera

        browser.get(page.url)
        canvas = browser.find_element(By.ID, "view")
        before = settled(browser)
        assert (before["width"], before["height"]) == (640, 480)
        assert browser.execute_script("return document.querySelector('#file').textContent") == str(
            calibration
        )
        wait_until(
            lambda: browser.execute_script("return canvas.width === 640 && frame.naturalWidth === 640")
        )
        assert_derived_like_the_daemon(before)

        # Drag the ramp's top-left corner 40 px up: the LEFT lane (at the top edge) follows.
        ramp = [tuple(p) for p in before["points"]["RAMP_ROI"]]
        corner = min(ramp, key=lambda p: (p[1], p[0]))
        target = (corner[0], corner[1] - 40)
        drag(browser, canvas, corner, target)
        after = settled(browser)
        moved = after["points"]["RAMP_ROI"][ramp.index(corner)]
        assert near(moved, target), moved
        assert after["derived"]["RAMP_LEFT_ROI"] != before["derived"]["RAMP_LEFT_ROI"]
        assert after["derived"]["RAMP_LEFT_ROI"][0] == moved  # the top edge starts at the moved corner
        assert_derived_like_the_daemon(after)

        # Place the return track afresh, clicking its four corners.
        browser.find_element(By.CSS_SELECTOR, "button[data-key='RETURN_TRACK_ROI']").click()
        browser.find_element(By.ID, "redo").click()
        assert 'Click the 4 points of "Return track"' in browser.find_element(By.ID, "hint").text
        assert browser.find_element(By.ID, "save").get_attribute("disabled") is not None
        corners = [(440, 366), (556, 366), (556, 398), (440, 398)]
        for point in corners:
            click_at(browser, canvas, point)
        placed = settled(browser)["points"]["RETURN_TRACK_ROI"]
        assert len(placed) == 4
        assert all(near(p, c) for p, c in zip(placed, corners, strict=True)), placed
        assert "Every region is placed" in browser.find_element(By.ID, "hint").text

        screenshot = tmp_path / "calibration-page.png"
        assert browser.save_screenshot(str(screenshot))
        shot = cv2.imread(str(screenshot))
        assert shot is not None
        assert shot.shape[1] == 1280

        browser.find_element(By.ID, "save").click()
        wait_until(lambda: page_state(browser)["saved"] is not None, timeout=15)
        message = browser.find_element(By.ID, "message").text
        assert f"Saved to {calibration}" in message
        assert f"service (pid {service.process.pid}) reloads it" in message
        service.wait_line(r"reload: applying changes to calibration")

        check = subprocess.run(
            [sys.executable, "-m", "daemon", "calibrate", "--check", str(calibration)],
            env=cli_env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        assert "valid, calibrated at 640x480" in check.stdout
        saved = json.loads(calibration.read_text())
        assert (saved["frame_width"], saved["frame_height"], saved["version"]) == (640, 480, 1)
        calibrated_at = datetime.fromisoformat(saved["calibrated_at"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - calibrated_at).total_seconds()) < 600
        assert saved["RAMP_ROI"][ramp.index(corner)] == moved
        assert saved["RETURN_TRACK_ROI"] == placed
        loaded = load_calibration(calibration)
        assert [list(p) for p in loaded.polygons[Region.RAMP_LEFT]] == after["derived"]["RAMP_LEFT_ROI"]
        assert (tmp_path / "rig" / "calibration.prev.json").read_bytes() == original
        assert (tmp_path / "rig" / "calibration.scene.npz").is_file()  # the frame's reference, for drift
        assert not (tmp_path / "rig" / "calibration.prev.scene.npz").exists()  # the old file had none

        code, out = page.stop(signal.SIGINT)
        assert code == 0
        assert "calibration page stopped" in out
        assert service.process.poll() is None
    finally:
        service.close()


def still(path: Path) -> Path:
    image = np.full((480, 640, 3), 90, np.uint8)
    cv2.rectangle(image, (150, 20), (420, 350), (60, 160, 60), -1)
    assert cv2.imwrite(str(path), image)
    return path


def test_with_listen_every_request_needs_the_printed_token(
    tmp_path: Path, cli_env: dict[str, str], browser: WebDriver, pages: list[PageProcess]
) -> None:
    calibration = tmp_path / "calibration.json"
    shutil.copy(REPO / "config" / "calibration.json", calibration)
    original = calibration.read_bytes()
    env = {**cli_env, "PUTT_STATE_DIR": str(tmp_path / "state"), "PUTT_CALIBRATION_FILE": str(calibration)}
    page = PageProcess(
        tmp_path,
        env,
        "--listen",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--image",
        str(still(tmp_path / "s.png")),
    )
    pages.append(page)
    url = urlsplit(page.url)
    (token,) = parse_qs(url.query)["token"]
    assert len(token) >= 32
    base = f"{url.scheme}://{url.netloc}"
    points = {"points": load_calibration(calibration).to_json()}
    for path in ("/", "/frame.jpg", "/api/calibration"):
        assert requests.get(base + path, timeout=10).status_code == 403
        assert requests.get(f"{base}{path}?token=wrong{token}", timeout=10).status_code == 403
    refused = requests.post(
        base + "/api/save", json=points, headers={"X-Calibration-Token": token[:-1]}, timeout=10
    )
    assert refused.status_code == 403
    assert calibration.read_bytes() == original

    # The hole moved off the ramp: the same check as `calibrate --check` refuses it, and nothing is written.
    bad = load_calibration(calibration).to_json()
    bad["HOLE_ROI"] = [[x - 200, y] for x, y in bad["HOLE_ROI"]]
    answer = requests.post(
        base + "/api/save", json={"points": bad}, headers={"X-Calibration-Token": token}, timeout=10
    )
    assert answer.status_code == 422
    assert any("HOLE_ROI" in problem and "ramp" in problem for problem in answer.json()["problems"])
    assert calibration.read_bytes() == original
    assert not (tmp_path / "calibration.prev.json").exists()

    fresh = requests.post(base + "/api/frame", json={}, headers={"X-Calibration-Token": token}, timeout=10)
    assert fresh.json() == {"width": 640, "height": 480}

    browser.get(page.url)
    loaded = settled(browser)
    assert loaded["points"]["RAMP_ROI"] == [
        list(p) for p in load_calibration(calibration).polygons[Region.RAMP]
    ]
    wait_until(lambda: browser.execute_script("return frame.naturalWidth") == 640)
    code, _ = page.stop(signal.SIGTERM)
    assert code == 0


def test_on_localhost_a_foreign_host_name_or_a_non_json_post_is_refused(
    tmp_path: Path, cli_env: dict[str, str], pages: list[PageProcess]
) -> None:
    env = {
        **cli_env,
        "PUTT_STATE_DIR": str(tmp_path / "state"),
        "PUTT_CALIBRATION_FILE": str(tmp_path / "new.json"),
    }
    port = free_port()
    page = PageProcess(tmp_path, env, "--port", str(port), "--image", str(still(tmp_path / "s.png")))
    pages.append(page)
    base = f"http://127.0.0.1:{port}"
    assert requests.get(base + "/", timeout=10).status_code == 200
    rebound = requests.get(
        base + "/api/calibration", headers={"Host": f"attacker.example:{port}"}, timeout=10
    )
    assert rebound.status_code == 403
    form = requests.post(base + "/api/save", data={"points": "x"}, timeout=10)
    assert form.status_code == 415
    fresh = requests.get(base + "/api/calibration", timeout=10).json()
    assert fresh["points"] == {}
    assert "No calibration at" in fresh["notice"]
    assert [r["key"] for r in fresh["regions"]] == [r.value for r in CLICKED]
    assert [r["count"] for r in fresh["regions"]] == [4, 4, 12, 4, 4, 4, 4]
    busy = subprocess.run(
        [sys.executable, "-m", "daemon", "calibrate", "--serve", "--port", str(port), "--image",
         str(tmp_path / "s.png")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in busy.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "daemon", "calibrate", "--serve", "--image", str(tmp_path / "none.png")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 66
    assert "image file not found" in missing.stderr
    code, _ = page.stop(signal.SIGINT)
    assert code == 0
    assert not (tmp_path / "new.json").exists()


def test_with_no_calibration_yet_the_page_starts_from_the_regions_proposed_from_the_camera_frame(
    tmp_path: Path, cli_env: dict[str, str], pages: list[PageProcess]
) -> None:
    target = tmp_path / "calibration.json"
    env = {**cli_env, "PUTT_STATE_DIR": str(tmp_path / "state"), "PUTT_CAMERA_SOURCE": SIM,
           "PUTT_CALIBRATION_FILE": str(target)}  # fmt: skip
    port = free_port()
    pages.append(PageProcess(tmp_path, env, "--port", str(port)))
    base = f"http://127.0.0.1:{port}"
    start = requests.get(base + "/api/calibration", timeout=10).json()
    assert "these regions are proposed from the frame" in start["notice"]
    assert [len(start["points"][r.value]) for r in CLICKED] == [4, 4, 12, 4, 4, 4, 4]
    saved = requests.post(base + "/api/save", json={"points": start["points"]}, timeout=30)
    assert saved.status_code == 200, saved.text
    assert saved.json()["previous"] is None
    assert saved.json()["service_pid"] is None
    assert load_calibration(target).frame_size == (640, 480)
