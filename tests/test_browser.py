"""The visitor's journey in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"

pytestmark = pytest.mark.browser


def _browser_or_skip():
    if not Path(CHROMIUM).exists():
        message = f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but " + message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    return sync_playwright


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The real app on a real port, with migrations and demo data, like `make run`."""
    from flask_migrate import upgrade

    from booking import create_app
    from booking.demo.cli import load_demo
    from booking.extensions import db

    database = tmp_path_factory.mktemp("live") / "live.db"
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "MAIL_BACKEND": "console"}
    )
    with app.app_context():
        upgrade()
        load_demo()
        db.session.remove()
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _shot(page, name: str) -> None:
    if os.environ.get("SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def test_visitor_browses_in_chinese_registers_signs_in_and_opens_a_resource(live_server, browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server + "/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", level=1).inner_text() == "查找仪器设备、中试线、算力与软件"
    _shot(page, "catalogue")

    # Filter the catalogue to compute resources.
    page.locator("select[name=kind]").select_option("compute")
    page.get_by_role("button", name="搜索").click()
    cards = page.locator("li.resource")
    assert cards.count() >= 2
    assert set(cards.evaluate_all("els => els.map(e => e.dataset.kind)")) == {"compute"}

    # Register: a mistake first (weak password), in Chinese, then the real thing.
    page.get_by_role("link", name="注册").click()
    page.get_by_label("电子邮箱").fill("visitor@example.com")
    page.get_by_label("您的姓名").fill("访客 小李")
    page.get_by_label("密码", exact=True).fill("short")
    page.get_by_label("再次输入密码").fill("short")
    page.get_by_role("button", name="注册").click()
    assert page.get_by_text("密码至少需要 8 个字符。").is_visible()
    page.get_by_label("密码", exact=True).fill("mountain-river-9")
    page.get_by_label("再次输入密码").fill("mountain-river-9")
    page.get_by_role("button", name="注册").click()
    assert page.get_by_role("button", name="退出登录").is_visible()

    # Sign out and back in.
    page.get_by_role("button", name="退出登录").click()
    page.get_by_role("link", name="登录").first.click()
    page.get_by_label("电子邮箱").fill("visitor@example.com")
    page.get_by_label("密码").fill("mountain-river-9")
    page.get_by_role("button", name="登录").click()
    assert page.get_by_text("您已登录。").is_visible()

    # Search and open a resource page.
    page.locator("input[name=q]").fill("GPU")
    page.get_by_role("button", name="搜索").click()
    page.locator("li.resource h2 a").first.click()
    assert page.get_by_role("heading", name="预约条款").is_visible()
    assert page.get_by_role("heading", name="开放时间").is_visible()
    _shot(page, "resource")

    # Switch to English on the same page.
    page.locator("button[data-locale=en]").click()
    assert page.get_by_role("heading", name="Booking terms").is_visible()
    context.close()


def _sign_in(page, base: str, email: str, password: str = "demo12345") -> None:
    page.goto(base + "/account/login")
    page.get_by_label("电子邮箱").fill(email)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def test_engineer_books_from_the_week_view_and_cancels(live_server, browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    _sign_in(page, live_server, "engineer@demo.test")
    page.goto(live_server + "/?kind=compute&carrier=CQ01")
    page.locator("li.resource h2 a").filter(has_text="L40S").click()
    page.get_by_role("link", name="查看空闲并预约").click()
    page.get_by_role("link", name="下一周").click()  # a week ahead: all of it is in the future
    # Pick a free hour from the week view: the form is filled in with it.
    page.locator("td.cell-free a").nth(30).click()
    assert page.locator("input[name=day]").input_value() != ""
    page.locator("form.booking-form input[name=quantity]").fill("2")
    page.locator("textarea[name=purpose]").fill("模型推理压测")
    _shot(page, "book")
    page.get_by_role("button", name="预约", exact=True).click()
    assert page.get_by_text("预约成功。").is_visible()
    assert page.get_by_role("heading", level=1).inner_text().startswith("GPU 推理与开发服务器")
    booking_url = page.url
    booking_id = booking_url.rstrip("/").rsplit("/", 1)[-1]
    page.get_by_role("link", name="我的预约").click()
    row = page.locator(f"tr[data-booking='{booking_id}']")
    assert "GPU 推理与开发服务器" in row.inner_text() and "已批准" in row.inner_text()
    page.goto(booking_url)
    page.locator("form[action$='/cancel'] button").click()
    assert page.get_by_text("已取消").first.is_visible()
    context.close()
